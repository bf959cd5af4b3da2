"""``python -m rsr_bench`` (and ``torchrun ... -m rsr_bench``): the same as the ``rsr-bench`` command."""

from .cli import main

if __name__ == "__main__":
    main()
