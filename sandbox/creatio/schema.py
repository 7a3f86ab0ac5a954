"""The Creatio objects the stand-in serves over OData 4: their properties, types and lookups.

Property names are Creatio's own (``Opportunity_CrtOpportunity`` and friends). A lookup
column appears twice, as in Creatio's OData 4: the scalar foreign key ``<Name>Id`` (a
``Edm.Guid`` in the JSON) and the navigation property ``<Name>`` (what ``$expand`` and a
``$filter`` path such as ``Stage/Id`` use). Navigation is modelled only towards the sets
the stand-in serves; other lookups (``Type``, ``Category``, ...) are plain GUID columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GUID = "Edm.Guid"
STRING = "Edm.String"
DATETIME = "Edm.DateTimeOffset"
BOOLEAN = "Edm.Boolean"
INT = "Edm.Int32"
DECIMAL = "Edm.Decimal"

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
NAMESPACE = "Terrasoft.Configuration"


@dataclass(frozen=True)
class Prop:
    name: str
    type: str
    # a lookup's scalar foreign key: the name of its navigation property and its target set
    navigation: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class EntitySet:
    name: str
    props: tuple[Prop, ...]
    _by_name: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.props})

    def prop(self, name: str) -> Prop | None:
        return self._by_name.get(name)

    def field_names(self) -> list[str]:
        return [p.name for p in self.props]

    def navigation(self, name: str) -> Prop | None:
        """The foreign key column behind the navigation property ``name``."""
        return next((p for p in self.props if p.navigation == name), None)

    def navigations(self) -> list[Prop]:
        return [p for p in self.props if p.navigation is not None]

    @property
    def qualified(self) -> str:
        return f"{NAMESPACE}.{self.name}"


def _lookup(name: str, target: str | None = None) -> Prop:
    """``<name>Id``; with a served ``target``, also the navigation property ``<name>``."""
    return Prop(f"{name}Id", GUID, name if target else None, target)


# every Creatio object inherits these from BaseEntity
BASE: tuple[Prop, ...] = (
    Prop("Id", GUID),
    Prop("CreatedOn", DATETIME),
    _lookup("CreatedBy", "Contact"),
    Prop("ModifiedOn", DATETIME),
    _lookup("ModifiedBy", "Contact"),
    Prop("ProcessListeners", INT),
)

OPPORTUNITY = EntitySet(
    "Opportunity",
    (
        *BASE,
        Prop("Title", STRING),
        _lookup("Type"),
        _lookup("Stage", "OpportunityStage"),
        Prop("DueDate", DATETIME),
        _lookup("CloseReason", "OpportunityCloseReason"),
        _lookup("Owner", "Contact"),
        Prop("Notes", STRING),
        _lookup("Account", "Account"),
        _lookup("Contact", "Contact"),
        _lookup("Category"),
        _lookup("Mood"),
        Prop("IsPrimary", BOOLEAN),
        _lookup("Partner", "Account"),
        Prop("Budget", DECIMAL),
        Prop("Probability", INT),
        Prop("Amount", DECIMAL),
        _lookup("Source"),
        _lookup("ResponsibleDepartment"),
        Prop("Weaknesses", STRING),
        Prop("Strength", STRING),
        Prop("Tactic", STRING),
        Prop("CheckDate", DATETIME),
        _lookup("Process"),
        _lookup("Winner", "Account"),
        Prop("Completeness", INT),
        Prop("Description", STRING),
        Prop("MoodValue", INT),
        Prop("ByProcess", BOOLEAN),
    ),
)

OPPORTUNITY_IN_STAGE = EntitySet(
    "OpportunityInStage",
    (
        *BASE,
        _lookup("Opportunity", "Opportunity"),
        _lookup("Stage", "OpportunityStage"),
        Prop("StartDate", DATETIME),
        Prop("DueDate", DATETIME),
        _lookup("Owner", "Contact"),
        Prop("Comments", STRING),
        Prop("Historical", BOOLEAN),
    ),
)

OPPORTUNITY_STAGE = EntitySet(
    "OpportunityStage",
    (
        *BASE,
        Prop("Name", STRING),
        Prop("Description", STRING),
        Prop("End", BOOLEAN),
        Prop("Successful", BOOLEAN),
        Prop("Number", INT),
        Prop("MaxProbability", INT),
        Prop("NextStepTerm", INT),
        Prop("ShowInFunnel", BOOLEAN),
        Prop("Color", STRING),
        Prop("ShowInProgressBar", BOOLEAN),
    ),
)

OPPORTUNITY_CLOSE_REASON = EntitySet(
    "OpportunityCloseReason",
    (*BASE, Prop("Name", STRING), Prop("Description", STRING)),
)

CONTACT = EntitySet(
    "Contact",
    (
        *BASE,
        Prop("Name", STRING),
        _lookup("Owner", "Contact"),
        _lookup("Account", "Account"),
        _lookup("Type"),
        Prop("JobTitle", STRING),
        Prop("Email", STRING),
        Prop("Phone", STRING),
        Prop("MobilePhone", STRING),
    ),
)

SYS_ADMIN_UNIT = EntitySet(
    "SysAdminUnit",
    (
        *BASE,
        Prop("Name", STRING),
        Prop("Description", STRING),
        _lookup("Contact", "Contact"),
        _lookup("Account", "Account"),
        _lookup("ParentRole"),
        Prop("SysAdminUnitTypeValue", INT),
        Prop("Active", BOOLEAN),
        Prop("ConnectionType", INT),
        Prop("Email", STRING),
    ),
)


def account_set(inn_field: str | None) -> EntitySet:
    """``Account``; ``inn_field`` is where this site keeps the INN: ``INN`` (the Financial
    Services package), a custom column (``UsrINN``), or None (no INN column at all)."""
    props = [
        *BASE,
        Prop("Name", STRING),
        Prop("AlternativeName", STRING),
        Prop("Code", STRING),
        _lookup("Owner", "Contact"),
        _lookup("PrimaryContact", "Contact"),
        _lookup("Type"),
        Prop("Phone", STRING),
        Prop("Web", STRING),
    ]
    if inn_field:
        props.append(Prop(inn_field, STRING))
    return EntitySet("Account", tuple(props))


def entity_sets(inn_field: str | None = "INN") -> dict[str, EntitySet]:
    sets = [
        OPPORTUNITY,
        OPPORTUNITY_IN_STAGE,
        OPPORTUNITY_STAGE,
        OPPORTUNITY_CLOSE_REASON,
        account_set(inn_field),
        CONTACT,
        SYS_ADMIN_UNIT,
    ]
    return {s.name: s for s in sets}


SET_NAMES: tuple[str, ...] = tuple(entity_sets())
