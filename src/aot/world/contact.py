"""Labelled contact sheets: they know nothing of scenes and live in :mod:`aot.contact`."""

from ..contact import contact_sheet

__all__ = ["contact_sheet"]
