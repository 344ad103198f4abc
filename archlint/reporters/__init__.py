"""Renderers of a :class:`~archlint.report.Report`."""
