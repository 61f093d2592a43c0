"""Test doubles for libraries the tests cannot use for real (NVML has no GPU here)."""
