"""`ostiary user access`: a user's access facts (fhirUser, roles, patients), set only by an administrator.

Kept apart from profile claims: `ostiary user update --claim` cannot touch them. Every reference is
checked against this server's FHIR data, so a fhirUser, patient or Group that does not exist is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .common import config_option, database_option, emit_json, json_option, load, with_provider

if TYPE_CHECKING:
    from ..app.provider import Provider
    from ..store.access import AccessFacts

__all__ = ["access_command"]


def _describe(username: str, facts: AccessFacts | None) -> dict[str, Any]:
    if facts is None:
        return {"username": username, "fhirUser": None, "roles": [], "patients": [], "group": None,
                "all_patients": False}
    return {"username": username, "fhirUser": facts.fhir_user, "roles": sorted(facts.roles),
            "patients": list(facts.patients), "group": facts.group, "all_patients": facts.all_patients}


@click.command("access")
@click.argument("username")
@click.option("--fhir-user", help="SMART fhirUser: Patient/ID, RelatedPerson/ID, Practitioner/ID, "
                                  "PractitionerRole/ID or Person/ID on this server's FHIR base (must exist).")
@click.option("--no-fhir-user", is_flag=True, help="Remove the fhirUser (the user then sees no clinical data).")
@click.option("--patient", "add_patients", multiple=True, metavar="ID",
              help="Let the user see this patient (a practitioner's list, or a patient's linked patient).")
@click.option("--remove-patient", "remove_patients", multiple=True, metavar="ID", help="Take a patient away.")
@click.option("--group", metavar="ID", help="A practitioner also sees the members of this FHIR Group.")
@click.option("--no-group", is_flag=True, help="Remove the Group.")
@click.option("--all-patients/--listed-patients", default=None,
              help="A practitioner sees every patient, or only the listed ones (the default).")
@click.option("--role", "add_roles", multiple=True, type=click.Choice(["launch", "develop"]),
              help="launch: may use the EHR launcher; develop: may register apps.")
@click.option("--remove-role", "remove_roles", multiple=True, type=click.Choice(["launch", "develop"]))
@click.option("--clear", is_flag=True, help="Remove every access fact first.")
@config_option
@database_option
@json_option
def access_command(username: str, fhir_user: str | None, no_fhir_user: bool, add_patients: tuple[str, ...],
                   remove_patients: tuple[str, ...], group: str | None, no_group: bool, all_patients: bool | None,
                   add_roles: tuple[str, ...], remove_roles: tuple[str, ...], clear: bool, config_file: str | None,
                   database_url: str | None, as_json: bool) -> None:
    """Show or change what decides a user's clinical access (with no option: show it)."""
    from dataclasses import replace

    from ..fhir.directory import FhirDirectory
    from ..fhir.store import FhirStore
    from ..server.audit import audit
    from ..server.policy.patients import fhir_user_reference
    from ..store.access import AccessFacts

    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> dict[str, Any]:
        user = await p.users.by_username(username)
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        store = p.patient_access.facts
        current = await store.get(user.id)
        changing = any((fhir_user, no_fhir_user, add_patients, remove_patients, group, no_group, add_roles,
                        remove_roles, clear, all_patients is not None))
        if not changing:
            return _describe(username, current)
        directory = p.directory or FhirDirectory(FhirStore(p.engine))
        facts = AccessFacts(user.id) if clear or current is None else current
        if fhir_user is not None:
            try:
                kind, ident = fhir_user_reference(fhir_user, settings.fhir_base_url)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
            if await directory.resource(kind, ident) is None:
                raise click.ClickException(f"fhirUser {kind}/{ident} does not exist on {settings.fhir_base_url}")
            facts = replace(facts, fhir_user=f"{kind}/{ident}")
        if no_fhir_user:
            facts = replace(facts, fhir_user=None)
        for patient in add_patients:
            if await directory.patient(patient) is None:
                raise click.ClickException(f"Patient/{patient} does not exist on {settings.fhir_base_url}")
        patients = [x for x in dict.fromkeys([*facts.patients, *add_patients]) if x not in remove_patients]
        if group is not None and await directory.resource("Group", group) is None:
            raise click.ClickException(f"Group/{group} does not exist on {settings.fhir_base_url}")
        facts = replace(
            facts, patients=tuple(patients), group=None if no_group else (group or facts.group),
            all_patients=facts.all_patients if all_patients is None else all_patients,
            roles=(facts.roles | set(add_roles)) - set(remove_roles),
        )
        await store.put(facts)
        described = _describe(username, facts)
        audit("access_facts_changed", sub=user.id, **{k: v for k, v in described.items() if k != "username"})
        return described

    shown = with_provider(settings, action)
    if as_json:
        emit_json(shown)
        return
    click.echo(f"{username}  fhirUser={shown['fhirUser'] or '-'}  roles={','.join(shown['roles']) or '-'}")
    if shown["all_patients"]:
        click.echo("  patients: all")
    else:
        click.echo(f"  patients: {', '.join(shown['patients']) or '-'}"
                   + (f"  + members of Group/{shown['group']}" if shown["group"] else ""))
