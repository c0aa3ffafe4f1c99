"""Deterministic simulation: one seed drives a whole cluster on a virtual clock."""
