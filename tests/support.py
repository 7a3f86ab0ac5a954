"""Helpers for tests: paths, free ports, the demo's environment."""

from __future__ import annotations

import socket
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# what the demo configuration references; the values are the tests' own
DEMO_ENV = {
    "AMO_RETAIL_CLIENT_ID": "test-client-id",
    "AMO_RETAIL_CLIENT_SECRET": "test-client-secret",
    "AMO_RETAIL_REFRESH_TOKEN": "test-refresh-token",
    "B24_WHOLESALE_WEBHOOK": "http://127.0.0.1:1/rest/1/test/",
    "ONEC_USER": "test-user",
    "ONEC_PASSWORD": "test-password",
    "MEGAPLAN_TOKEN": "test-token",
    "CREATIO_USER": "test-user",
    "CREATIO_PASSWORD": "test-password",
    "RBS_USER": "test-user",
    "RBS_PASSWORD": "test-password",
    "TELEGRAM_BOT_TOKEN": "123:test",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
