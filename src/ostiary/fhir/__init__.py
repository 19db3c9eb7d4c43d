"""The SMART-protected FHIR R4 API, its synthetic sample data and the FHIR gateway.

Import the parts you need: ``ostiary.fhir.app`` (``make_fhir_app``), ``ostiary.fhir.store``
(``FhirStore``, ``get_resource``, ``search_patients``), ``ostiary.fhir.sample`` (``load_sample``),
``ostiary.fhir.gateway`` (``make_gateway_app``). This module imports nothing heavy: the table
definitions in ``ostiary.fhir.schema`` are loaded by the migrations.
"""
