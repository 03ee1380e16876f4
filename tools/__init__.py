"""Maintainer tools: executing the notebook series and rendering the site (not part of ``interp_helpers``)."""
