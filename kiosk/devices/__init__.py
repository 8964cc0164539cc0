"""Kiosk devices: which browsers may use the kiosk-only visitor routes (docs/security.md)."""
