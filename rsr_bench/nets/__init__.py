"""Network definitions shared by evaluation adapters and the training pipeline."""
