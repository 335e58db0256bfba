"""Thin function views: load (owner-scoped), call one service, render."""
