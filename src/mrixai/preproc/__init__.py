"""Per-subject preprocessing: reorientation, N4, skull stripping, tissue segmentation, registration."""
