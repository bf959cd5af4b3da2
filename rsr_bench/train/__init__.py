"""RSR robust training (PGD adversarial fine-tuning of ESRGAN), separate from evaluation.

Nothing here is imported by the evaluation path; ``rsr-bench train`` imports it lazily.
Entry points: :func:`rsr_bench.train.trainer.train` (one run) and
:func:`rsr_bench.train.ablation.run_ablation` (the paper's Table 1 grid).
"""
