"""Onboarding: give backends without outcome data the answers a router needs to route them."""
