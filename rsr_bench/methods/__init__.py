"""Methods: method cards, the adapter interface, the adapters and the networks they run."""
