"""Figures: shared style and helpers (common), learning studies (studies), attribution maps (attribution)."""
