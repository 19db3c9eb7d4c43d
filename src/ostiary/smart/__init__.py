"""SMART on FHIR: scopes v1/v2, launch context, smart-configuration."""
