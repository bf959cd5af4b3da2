"""Everything that puts files on disk: downloads, assets, dataset archives, converters."""
