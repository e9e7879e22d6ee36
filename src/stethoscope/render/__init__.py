"""Renderers: turn snapshots and sources into what clients show."""
