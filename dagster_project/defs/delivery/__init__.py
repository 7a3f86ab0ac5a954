"""Delivery: the Excel report and the weekly funnel report, built from the marts."""
