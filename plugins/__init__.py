"""Marketplace plugins (matching, ads, finance) on the hook API. Not built yet."""
