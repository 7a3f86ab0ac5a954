"""The company's configuration: sources.yaml, funnel.yaml, alerts.yaml, validated."""

from dwh.config.loader import ConfigError, load_alerts, load_config, load_funnel, load_sources
from dwh.config.models import AlertsConfig, Config, FunnelConfig, SourcesConfig

__all__ = [
    "AlertsConfig",
    "Config",
    "ConfigError",
    "FunnelConfig",
    "SourcesConfig",
    "load_alerts",
    "load_config",
    "load_funnel",
    "load_sources",
]
