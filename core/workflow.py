"""Workflows and approvals: states and transitions of a record, defined as JSON metadata.

A workflow names an entity and its state field (a select field). Only transitions change that
field; each transition says from which states it leaves, where it goes, who may take it
(``owner``, ``manager``, ``anyone``, ``role:<name>``, ``user:<username>``), on which condition
(the core expression language, so amount-dependent routing is a condition), whether the owner
may approve their own record, and whether a comment is required. A state says who may still edit
the record's fields there and which values are set on entering it. Every transition runs through
the record service in one savepoint with the ``crm_before_transition`` / ``crm_after_transition``
hooks (a veto rolls it all back), is logged in ``crm_workflow_log`` and, when it reaches a final
state, tells the record's owner.
"""
import sqlalchemy as sa

from crm.core import expressions, notifications
from crm.core.access import owner_field
from crm.core.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed, Vetoed
from crm.core.registry import text_in
from crm.core.tables import roles, user_roles, users, workflow_log
from crm.hooks import Veto


class Workflow:
    def __init__(self, spec, owner):
        self.spec = spec
        self.owner = owner
        self.name = spec["workflow"]
        self.entity = spec["entity"]
        self.state_field = spec["state_field"]
        self.initial = spec["initial"]
        self.states = spec["states"]
        self.transitions = {t["id"]: t for t in spec["transitions"]}

    def label(self, locale="zh_CN"):
        return text_in(self.spec["label"], locale)

    def state_label(self, state, locale="zh_CN"):
        return text_in(self.states.get(state, {}).get("label") or state or "", locale)

    def transition_label(self, transition, locale="zh_CN"):
        """A step's button text: its own label, else the label of the state it leads to."""
        return text_in(transition.get("label") or "", locale) or self.state_label(transition["to"], locale)

    def describe(self, transition, locale="zh_CN"):
        """A step as buttons and API clients show it."""
        return {"id": transition["id"], "label": self.transition_label(transition, locale), "to": transition["to"],
                "to_label": self.state_label(transition["to"], locale),
                "comment_required": bool(transition.get("comment_required"))}

    def approval_steps(self):
        """The steps that are someone's approval: allowed to more than the record's owner and "anyone"."""
        return [t for t in self.spec["transitions"] if set(t.get("allowed", ["anyone"])) - {"owner", "anyone"}]


def check_workflow(model, doc):
    """[(pointer, message)] for names a workflow document refers to that do not exist."""
    data, found = doc.data, []
    entity = model.entities.get(data["entity"])
    if entity is None:
        return [("/entity", f"unknown entity {data['entity']!r}")]
    known = set(entity.fields) | set(entity.system_fields)
    field = entity.fields.get(data["state_field"])
    if field is None or field.type != "select":
        found.append(("/state_field", f"{data['state_field']!r} is not a select field of {entity.name!r}"))
    elif field.dictionary in model.dictionaries:
        values = {v for v, *_ in model.dictionaries[field.dictionary].flat_items()}
        found += [(f"/states/{s}", f"state {s!r} is not a value of dictionary {field.dictionary!r}")
                  for s in data["states"] if s not in values]
    if data["initial"] not in data["states"]:
        found.append(("/initial", f"unknown state {data['initial']!r}"))
    for state, spec in data["states"].items():
        for name, expr in spec.get("set", {}).items():
            if name not in entity.fields:
                found.append((f"/states/{state}/set/{name}", f"unknown field {name!r}"))
            found += [(f"/states/{state}/set/{name}{e.path}", e.message) for e in expressions.validate(expr, known)]
    seen = set()
    for i, transition in enumerate(data["transitions"]):
        if transition["id"] in seen:
            found.append((f"/transitions/{i}/id", f"transition {transition['id']!r} appears twice"))
        seen.add(transition["id"])
        for j, state in enumerate(transition["from"]):
            if state not in data["states"]:
                found.append((f"/transitions/{i}/from/{j}", f"unknown state {state!r}"))
        if transition["to"] not in data["states"]:
            found.append((f"/transitions/{i}/to", f"unknown state {transition['to']!r}"))
        if "condition" in transition:
            found += [(f"/transitions/{i}/condition{e.path}", e.message) for e in expressions.validate(transition["condition"], known)]
    return found


# --- who may act -----------------------------------------------------------------------------

def _role_names(records):
    if not hasattr(records, "_workflow_roles"):
        records._workflow_roles = set() if records.user is None else set(records.session.execute(
            sa.select(roles.c.name).join(user_roles, user_roles.c.role_id == roles.c.id)
            .where(user_roles.c.user_id == records.user["id"])).scalars())
    return records._workflow_roles


def _owner(records, user_id):
    """(manager_id, department_id) of a record's owner, looked up once per record service."""
    cache = records.__dict__.setdefault("_workflow_owners", {})
    if user_id not in cache:
        cache[user_id] = records.session.execute(
            sa.select(users.c.manager_id, users.c.department_id).where(users.c.id == user_id)).first()
    return cache[user_id]


def matches(records, principal, entity, record):
    """Is the acting user ``principal`` for this record?"""
    user = records.user
    if user is None:
        return True
    owner_id = record.get(owner_field(entity))
    if principal == "anyone":
        return True
    if principal == "owner":
        return owner_id == user["id"]
    if principal == "manager":
        if owner_id is None or owner_id == user["id"]:
            return False
        owner = _owner(records, owner_id)
        return owner is not None and (owner.manager_id == user["id"] or owner.department_id in records.access.departments_for("own"))
    kind, _, name = principal.partition(":")
    if kind == "role":
        return name in _role_names(records)
    if kind == "user":
        return user.get("username") == name
    return False


def _may(records, principals, entity, record):
    if records.user is None or records.user.get("is_admin"):
        return True
    return any(matches(records, p, entity, record) for p in principals)


REASONS = {
    "state": {"zh_CN": "当前状态“{state}”下不能执行此步骤", "en": "not possible in state {state}"},
    "principal": {"zh_CN": "你无权执行此步骤", "en": "you may not take this step"},
    "self": {"zh_CN": "不能审批自己的单据", "en": "you may not approve your own record"},
    "condition": {"zh_CN": "不满足此步骤的条件", "en": "the condition of this step is not met"},
    "comment": {"zh_CN": "此步骤必须填写意见", "en": "a comment is required for this step"},
}


def _reason(records, key, **values):
    texts = REASONS[key]
    return (texts["zh_CN"] if records.locale.startswith("zh") else texts["en"]).format(**values)


def can_take(records, workflow, transition, entity, record):
    """(True, "") or (False, why) for the acting user and this record now."""
    if record.get(workflow.state_field) not in transition["from"]:
        return False, _reason(records, "state", state=workflow.state_label(record.get(workflow.state_field), records.locale))
    if not _may(records, transition.get("allowed", ["anyone"]), entity, record):
        return False, _reason(records, "principal")
    if transition.get("self_approval") is False and records.user is not None \
            and record.get(owner_field(entity)) == records.user["id"]:
        return False, _reason(records, "self")
    condition = transition.get("condition")
    if condition is not None and not expressions.truthy(expressions.evaluate(condition, record, today=records.today())):
        return False, _reason(records, "condition")
    return True, ""


def may_edit(records, entity, record):
    """May the acting user edit the fields of ``record`` in its current state?"""
    workflow = records.model.workflows.get(entity.name)
    if workflow is None:
        return True
    state = workflow.states.get(record.get(workflow.state_field), {})
    return _may(records, state.get("editable_by", []), entity, record)


# --- acting ------------------------------------------------------------------------------------

def workflow_of(records, name):
    workflow = records.model.workflows.get(name)
    if workflow is None:
        raise NotFound(f"{name} has no workflow")
    return workflow


def available(records, name, record_id):
    """The transitions the acting user may take on the record now."""
    workflow = workflow_of(records, name)
    entity = records.entity(name)
    record = records._get(entity, record_id)
    return [t for t in workflow.spec["transitions"] if can_take(records, workflow, t, entity, record)[0]]


def transition(records, name, record_id, transition_id, comment=None, version=None):
    """Take transition ``transition_id``; returns the record after it."""
    workflow = workflow_of(records, name)
    entity = records.entity(name)
    step = workflow.transitions.get(transition_id)
    if step is None:
        raise NotFound(f"{name} has no transition {transition_id!r}")
    with records.session.begin_nested():
        record = records._get(entity, record_id)
        if version is not None and int(version) != record["version"]:
            raise Conflict(f"{entity.label_in(records.locale)} #{record['id']} was changed by someone else "
                           f"(version {record['version']}, yours {version}); reload", {"version": "stale"})
        allowed, why = can_take(records, workflow, step, entity, record)
        if not allowed:
            if record.get(workflow.state_field) not in step["from"]:
                raise Conflict(why, {"transition": why})
            raise Forbidden(why)
        comment = (comment or "").strip() or None
        if step.get("comment_required") and not comment:
            raise ValidationFailed(_reason(records, "comment"), {"comment": records.message("required")})
        try:
            records.runtime.plugins.hook.crm_before_transition(ctx=records, entity=entity, record=record, transition=step, comment=comment)
        except Veto as veto:
            raise Vetoed(veto.message, {veto.field or "transition": veto.message}) from veto
        target = workflow.states[step["to"]]
        values = {workflow.state_field: step["to"]}
        for field, expr in target.get("set", {}).items():
            values[field] = _jsonable(expressions.evaluate(expr, {**record, **values}, today=records.today()))
        # with the version read above: of two people taking a step on one record at once, the second gets 409
        after = records.as_system().update(name, record["id"], values, version=record["version"])
        log_id = records.session.execute(workflow_log.insert().values(
            entity=name, record_id=record["id"], workflow=workflow.name, transition=transition_id,
            from_state=record.get(workflow.state_field), to_state=step["to"], user_id=records.user_id,
            at=records.now(), comment=comment).returning(workflow_log.c.id)).scalar()
        owner_id = record.get(owner_field(entity))
        if target.get("final") and owner_id and owner_id != records.user_id:
            notifications.notify(records, owner_id, "workflow",
                                 f"{entity.label_in(records.locale)} {records.title(entity, record)}：{workflow.state_label(step['to'], records.locale)}",
                                 f"workflow:{log_id}", entity=name, record_id=record["id"], body=comment)
        try:
            records.runtime.plugins.hook.crm_after_transition(ctx=records, entity=entity, record=after, transition=step, comment=comment)
        except Veto as veto:
            raise Vetoed(veto.message, {veto.field or "transition": veto.message}) from veto
    return records.get(name, record["id"])


def _jsonable(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value) if value.__class__.__name__ == "Decimal" else value


def log(records, name, record_id):
    """The record's transitions, oldest first (who, when, from, to, comment)."""
    entity = records.entity(name)
    records._get(entity, record_id)   # 404 when out of reach
    stmt = sa.select(workflow_log).where(workflow_log.c.entity == name, workflow_log.c.record_id == int(record_id)).order_by(workflow_log.c.id)
    return [dict(r) for r in records.session.execute(stmt).mappings()]


def _could_take(records, transition):
    """The principals of ``transition`` the acting user matches on some record (by role, by name,
    or as someone's manager), leaving out administrators' right to take any step: an inbox holds
    the steps that are the user's own to take."""
    user, kinds = records.user, set()
    for principal in transition.get("allowed", ["anyone"]):
        kind, _, name = principal.partition(":")
        if (kind == "role" and name in _role_names(records)) or (kind == "user" and user.get("username") == name):
            kinds.add(kind)
        elif kind == "manager" and (records.access.reports() or records.access.departments_for("own")):
            kinds.add(kind)
    return kinds


def my_approvals(records, limit=200, scan=2000):
    """What waits for the acting user (待我审批): records within their reach in a state where they
    may take an approval step (one allowed to more than the owner and "anyone"), matching one of
    its principals themselves. [(entity name, record, [transitions])], at most ``limit`` of them,
    oldest first per workflow; at most ``scan`` records are read per workflow."""
    if records.user is None:
        return []
    waiting = []
    for name, workflow in records.model.workflows.items():
        steps = [(t, _could_take(records, t)) for t in workflow.approval_steps()]
        steps = [(t, kinds) for t, kinds in steps if kinds]
        if not steps or not records.access.allowed(name, "read"):
            continue
        entity = records.entity(name)
        states = sorted({s for t, _ in steps for s in t["from"]})
        filters = [(workflow.state_field, "in", ",".join(states))]
        if all(kinds == {"manager"} for _, kinds in steps):   # only as a manager: only their people's records
            people = [p for p in records.access.people_for("own") if p != records.user_id]
            filters.append((owner_field(entity), "in", ",".join(map(str, people or [0]))))
        cursor, seen = None, 0
        while len(waiting) < limit and seen < scan:
            try:
                page = records.list(name, filters=filters, sort="id", limit=min(200, scan - seen), cursor=cursor)
            except (BadRequest, Forbidden):   # e.g. the owner field is hidden from the user
                break
            # list rows lack child rows and the fields hidden from the user: conditions see whole records
            whole = any(f.type == "table" for f in entity.fields.values()) or records.access.hidden_fields(name)
            for record in page.items:
                full = records._get(entity, record["id"]) if whole else record
                mine = [t for t, _ in steps if any(matches(records, p, entity, full) for p in t.get("allowed", []))
                        and can_take(records, workflow, t, entity, full)[0]]
                if mine:
                    waiting.append((name, record, mine))
            seen += len(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    return waiting[:limit]


def approves_anything(records):
    """Is there a workflow step the acting user could approve (the "my approvals" menu entry)?"""
    if records.user is None:
        return False
    return bool(records.user.get("is_admin") and records.model.workflows) or any(
        _could_take(records, t) for workflow in records.model.workflows.values() for t in workflow.approval_steps())


def entered_at(records, name, record_ids):
    """{record id: when it entered its current state} (its latest logged step), one query."""
    if not record_ids:
        return {}
    stmt = (sa.select(workflow_log.c.record_id, sa.func.max(workflow_log.c.at))
            .where(workflow_log.c.entity == name, workflow_log.c.record_id.in_(sorted(record_ids)))
            .group_by(workflow_log.c.record_id))
    return dict(records.session.execute(stmt).all())
