"""Jinja templates of the web site (installed as the package `archive.templates`)."""
