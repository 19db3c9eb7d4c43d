"""FHIR API: resources stored as JSON, indexed by (type, patient compartment).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import ostiary.fhir.schema  # noqa: F401  (registers the table in the shared metadata the schema test compares)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_resources",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.String(40), nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("json", sa.Text, nullable=False),
    )
    op.create_index("ix_fhir_resources_type_patient", "fhir_resources", ["resource_type", "patient_id"])


def downgrade() -> None:
    op.drop_index("ix_fhir_resources_type_patient", "fhir_resources")
    op.drop_table("fhir_resources")
