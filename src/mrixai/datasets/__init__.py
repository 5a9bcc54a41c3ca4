"""Public raw datasets: downloads (``download``) and converters to BIDS (``ixi``, ``oasis``)."""
