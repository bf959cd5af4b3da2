"""``python -m rsr_bench.train`` / ``torchrun ... -m rsr_bench.train``: same as ``rsr-bench train``."""

from rsr_bench.cli.train import train_command

if __name__ == "__main__":
    train_command(prog_name="python -m rsr_bench.train")
