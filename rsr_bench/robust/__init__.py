"""The robustness lab (issue 10): corruption sweeps and adversarial attacks, per method.

- :mod:`.naming`: derived dataset names (``demo_clean~jpeg@3``, ``demo_clean~pgd@eps4``);
- :mod:`.corruptions`: the ten families x five severities;
- :mod:`.derived`: corrupted / transfer-attacked sets as ordinary datasets, generated once into the cache;
- :mod:`.attacks`: PGD through :func:`rsr_bench.train.attack.pgd_attack` (the one implementation);
- :mod:`.whitebox`: per-method attacked sets, evaluated with the runner's ``run_cell``;
- :mod:`.sweep`: ``RobustOptions`` and ``run_robust`` (``rsr-bench robust``);
- :mod:`.summary`: mean degradation, mCE normalised by bicubic, attack drops (from the store).

Nothing heavy is imported here: the dataset registry imports :mod:`.naming` only when a name
holds ``~``.
"""
