"""The composition root: builds the provider from settings; the only package naming SQL, Redis and FHIR concretes."""
