"""Learning: labels, data splits, metrics and CNN architectures for MRI classification."""
