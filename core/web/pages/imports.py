"""The import wizard ``/app/{entity}/import`` (导入向导), for roles with the entity's ``import``
action. Everything is done by :mod:`crm.core.importer`; these views only collect the user's
choices and show its results.

    GET  /app/{entity}/import                      upload form, template file, recent imports
    POST /app/{entity}/import                      keep the file (a malformed one is refused here)
    GET  /app/{entity}/import/template.xlsx        an empty file with the importable columns
    GET  /app/{entity}/import/{token}              column mapping, mode, duplicate criteria
    POST /app/{entity}/import/{token}/check        dry run (nothing is saved)
    POST /app/{entity}/import/{token}/run          the import
    GET  /app/{entity}/import/{token}/report       what the dry run or the run did, row by row
    GET  /app/{entity}/import/{token}/progress     JSON: rows done so far (polled by import.js)
    GET  /app/{entity}/import/{token}/errors       the bad rows with a reason column
    POST /app/{entity}/import/runs/{id}/revert     undo a finished import

Between steps the wizard's state lives in the shared ``files/`` folder
(:mod:`crm.core.import_sessions`), so the steps may be answered by different app servers. The
dry run and the run are one request each; while it works, the page polls ``progress``, which
any server answers from ``progress.json``. Without JavaScript the request simply takes as long
as the import.
"""
import mimetypes
import re
import tempfile
from pathlib import Path
from urllib.parse import quote

from pyramid.httpexceptions import HTTPFound
from pyramid.response import FileResponse, Response
from pyramid.view import view_config

from crm.core import import_sessions, importer, tabular
from crm.core.errors import BadRequest, CrmError, Forbidden, NotFound
from crm.core.web import security
from crm.core.web.pages.helpers import N_, Display, _, entity_label, flash, page_entity, render

TOKEN = "{token:[A-Za-z0-9_-]{16,64}}"
ROUTES = [
    ("import", "/import"),
    ("import.template", "/import/template.xlsx"),
    ("import.revert", r"/import/runs/{id:\d+}/revert"),
    ("import.mapping", "/import/" + TOKEN),
    ("import.check", "/import/" + TOKEN + "/check"),
    ("import.run", "/import/" + TOKEN + "/run"),
    ("import.report", "/import/" + TOKEN + "/report"),
    ("import.progress", "/import/" + TOKEN + "/progress"),
    ("import.errors", "/import/" + TOKEN + "/errors"),
]
SAMPLE_ROWS = 3
REPORT_PAGE = 200
ACTIONS = ("created", "updated", "skipped", "error")
ACTION_LABELS = {"created": N_("New"), "updated": N_("Updated"), "skipped": N_("Skipped"), "error": N_("Error")}
MODE_LABELS = {"create": N_("Create new records only"), "update": N_("Update existing records only"),
               "upsert": N_("Update existing records, create the others")}
STATUS_LABELS = {"done": N_("Done"), "reverted": N_("Reverted")}
# the importer's reasons, shown in the user's language (anything else is shown as it is)
REASONS = [
    (re.compile(r"already exists as #(?P<id>\d+) \(same (?P<fields>.+)\)"), N_("already exists as #${id} (same ${fields})")),
    (re.compile(r"same (?P<fields>.+) as row (?P<row>\d+)"), N_("same ${fields} as row ${row} of the file")),
    (re.compile(r"no matching record"), N_("no record matches the duplicate criteria")),
    (re.compile(r"several records match (?P<fields>.+)"), N_("several records have the same ${fields}")),
    (re.compile(r"empty duplicate criteria: (?P<fields>.+)"), N_("the duplicate criteria are empty: ${fields}")),
]


def includeme(config):
    from crm.core.web.pages import PREFIX
    from crm.core.web.security import EntityContext
    for name, pattern in ROUTES:
        config.add_route("page." + name, PREFIX + "/{entity}" + pattern, factory=EntityContext)
    config.scan(__name__)


def importable_entity(request):
    """The entity of the URL, if the user may import it (403 otherwise)."""
    entity = page_entity(request)
    if not request.records.access.allowed(entity.name, "import"):
        raise Forbidden(f"you may not import {entity.label_in(request.locale_name)}")
    return entity


def wizard(request, entity):
    return import_sessions.load(request.registry.crm, request.matchdict["token"], entity.name, request.identity["id"])


# --- step 1: upload -----------------------------------------------------------------------------

@view_config(route_name="page.import", request_method="GET", permission=security.READ)
def start(request):
    entity = importable_entity(request)
    return upload_page(request, entity)


def upload_page(request, entity, error=None, status=200):
    records, display = request.records, Display(request)
    mine = None if request.identity.get("is_admin") else request.identity["id"]
    history = []
    for row in import_sessions.runs(records, entity.name, user_id=mine):
        history.append({**row, "when": display.system_text("created_at", row["created_at"]),
                        "who": display.system_text("created_by", row["created_by"]),
                        "mode": _(request, MODE_LABELS.get(row["mode"], row["mode"])),
                        "status_label": _(request, STATUS_LABELS.get(row["status"], row["status"])),
                        "counts": [(_(request, ACTION_LABELS[a]), (row["counts"] or {}).get(a, 0)) for a in ("created", "updated", "skipped")],
                        "revert_url": request.route_path("page.import.revert", entity=entity.name, id=row["id"])
                        if row["status"] == "done" else None})
    return render(request, "import_upload.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "error": error,
        "history": history, "template_url": request.route_path("page.import.template", entity=entity.name),
    }, status=status)


@view_config(route_name="page.import", request_method="POST", permission=security.READ)
def upload(request):
    entity = importable_entity(request)
    upload = request.POST.get("file")
    if not getattr(upload, "filename", None):
        return upload_page(request, entity, _(request, "Choose a .xlsx or .csv file first."), status=400)
    runtime = request.registry.crm
    try:
        session = import_sessions.start(runtime, upload.file, upload.filename, entity.name, request.identity["id"])
    except CrmError as e:
        return upload_page(request, entity, problem_text(request, e), status=400)
    try:
        headers, rows = tabular.read(session.source)   # a malformed file stops here and leaves nothing behind
    except CrmError as e:
        import_sessions.discard(session)
        return upload_page(request, entity, _(request, "The file cannot be imported: ${reason}", reason=problem_text(request, e)), status=400)
    if not rows:
        import_sessions.discard(session)
        return upload_page(request, entity, _(request, "The file has a header row but no data rows."), status=400)
    session.save(headers=headers, rows=len(rows), samples=[[_cell_text(c) for c in cells] for _n, cells in rows[:SAMPLE_ROWS]])
    return HTTPFound(request.route_path("page.import.mapping", entity=entity.name, token=session.token))


@view_config(route_name="page.import.template", request_method="GET", permission=security.READ)
def template(request):
    """An empty .xlsx whose headers are the labels of the importable fields (required first)."""
    entity = importable_entity(request)
    fields = sorted(importer.importable_fields(request.records, entity).values(), key=lambda f: not f.required)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "template.xlsx"
        writer = tabular.Writer(path, [f.label_in(request.locale_name) for f in fields])
        writer.close()
        body = path.read_bytes()
    return _download(body, f"{entity.label_in(request.locale_name)}-{_(request, 'template')}.xlsx")


def _download(body, filename):
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    response = Response(body=body, content_type=content_type)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- step 2: mapping, mode and duplicate criteria -----------------------------------------------

def choices_from(request, session, entity, fields):
    """The user's choices from the mapping form: ({header: field or ""}, mode, [match], partial)."""
    headers = session.state["headers"]
    mapping = {}
    for i, header in enumerate(headers):
        value = request.POST.get(f"column.{i}", "")
        if header:
            mapping[header] = value if value in fields else ""
    mode = request.POST.get("mode", "create")
    match = [m for m in request.POST.getall("match") if m in fields]
    return mapping, mode, match, bool(request.POST.get("partial"))


@view_config(route_name="page.import.mapping", request_method="GET", permission=security.READ)
def mapping(request):
    entity = importable_entity(request)
    return mapping_page(request, entity, wizard(request, entity))


def mapping_page(request, entity, session, error=None, status=200):
    records, locale = request.records, request.locale_name
    state = session.state
    headers, samples = state["headers"], state["samples"]   # kept at the upload: a large file is not read again here
    fields = importer.importable_fields(records, entity)
    columns, _unmapped = importer.map_columns(records, entity, headers, state.get("mapping"))
    remembered = state.get("mapping") is None and importer.remembered_mapping(records, entity, headers) is not None
    options = [(name, f.label_in(locale) + (" *" if f.required else "")) for name, f in fields.items()]
    table = []
    for i, header in enumerate(headers):
        if not header:
            continue
        table.append({"index": i, "header": header, "field": columns.get(i, ""),
                      "samples": [cells[i] for cells in samples]})
    mapped = set(columns.values())
    required = [f.label_in(locale) for n, f in fields.items() if f.required and f.default is None and n not in mapped]
    match = state.get("match") or ([entity.title_field] if entity.title_field in fields else [])
    matchable = [(n, f.label_in(locale), n in match) for n, f in fields.items() if f.type != "links"]
    return render(request, "import_mapping.pt", {
        "entity": entity, "entity_label": entity_label(entity, locale, plural=True), "session": session,
        "filename": state["filename"], "row_count": state["rows"], "columns": table, "options": options,
        "remembered": remembered, "missing_required": required, "error": error,
        "modes": [(m, _(request, MODE_LABELS[m]), m == state.get("mode", "create")) for m in importer.MODES],
        "matchable": matchable, "partial": bool(state.get("partial")),
        "check_url": request.route_path("page.import.check", entity=entity.name, token=session.token),
        "run_url": request.route_path("page.import.run", entity=entity.name, token=session.token),
        "progress_url": request.route_path("page.import.progress", entity=entity.name, token=session.token),
        "restart_url": request.route_path("page.import", entity=entity.name),
    }, status=status)


def _cell_text(value):
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


# --- steps 3 and 4: dry run and run --------------------------------------------------------------

@view_config(route_name="page.import.check", request_method="POST", permission=security.READ)
def check(request):
    return _work(request, dry_run=True)


@view_config(route_name="page.import.run", request_method="POST", permission=security.READ)
def run(request):
    return _work(request, dry_run=False)


def _work(request, dry_run):
    entity = importable_entity(request)
    session = wizard(request, entity)
    report_url = request.route_path("page.import.report", entity=entity.name, token=session.token)
    if session.state.get("import_id"):
        flash(request, _(request, "This file was imported already."), "error")
        return HTTPFound(report_url)
    if session.running():
        flash(request, _(request, "This file is being imported right now; wait for it to finish."), "error")
        return HTTPFound(request.route_path("page.import.mapping", entity=entity.name, token=session.token))
    fields = importer.importable_fields(request.records, entity)
    if "mode" in request.POST:   # from the mapping form (the report's "import now" reuses the choices)
        chosen, mode, match, partial = choices_from(request, session, entity, fields)
        session.save(mapping=chosen, mode=mode, match=match, partial=partial)
    state = session.state
    table = tabular.read(session.source)
    progress = session.progress_writer("check" if dry_run else "run", len(table[1]))
    try:
        result = importer.run(request.records, entity.name, session.source, mode=state.get("mode", "create"),
                              match=state.get("match") or (), mapping=state.get("mapping"), dry_run=dry_run,
                              partial=bool(state.get("partial")), progress=progress, table=table)
    except importer.ImportFailed as failed:   # all or nothing, and some rows are bad: nothing was saved
        session.save_report("run", failed.result, committed=False)
        _write_errors(session, table, failed.result)
        flash(request, _(request, "Nothing was imported: ${n} rows have errors.", n=failed.result.count("error")), "error")
        return HTTPFound(report_url)
    except BadRequest as e:   # choices that cannot work (a mode without criteria, a criterion without column ...)
        return mapping_page(request, entity, session, error=problem_text(request, e), status=400)
    finally:
        progress.finish()
    session.save_report("check" if dry_run else "run", result)
    _write_errors(session, table, result)
    if result.committed:
        session.save(import_id=result.import_id)
        flash(request, _(request, "The import is finished."), "success")
    return HTTPFound(report_url)


def _write_errors(session, table, result):
    session.errors_file.unlink(missing_ok=True)
    if result.errors:
        importer.write_errors(session.errors_file, *table, result)


@view_config(route_name="page.import.progress", request_method="GET", permission=security.READ, renderer="json")
def progress(request):
    entity = importable_entity(request)
    data = wizard(request, entity).progress()
    return {k: data.get(k) for k in ("phase", "done", "total", "running")}


# --- step 5: the report ---------------------------------------------------------------------------

@view_config(route_name="page.import.report", request_method="GET", permission=security.READ)
def report(request):
    entity = importable_entity(request)
    session = wizard(request, entity)
    report = session.report()
    if report is None:
        return HTTPFound(request.route_path("page.import.mapping", entity=entity.name, token=session.token))
    records = request.records
    saved = report["committed"] and import_sessions.run_row(records, report["import_id"]) is not None
    show = request.GET.get("show", "")
    try:
        offset = max(0, int(request.GET.get("offset", 0)))
    except ValueError:
        offset = 0
    chosen = [o for o in report["outcomes"] if not show or o["action"] == show]
    labels = {n: f.label_in(request.locale_name) for n, f in entity.fields.items()}
    rows = []
    for o in chosen[offset:offset + REPORT_PAGE]:
        linkable = o["record_id"] and (o["action"] in ("updated", "skipped") or (o["action"] == "created" and saved))
        rows.append({"row": o["row"], "action": o["action"], "action_label": _(request, ACTION_LABELS[o["action"]]),
                     "reason": reason_text(request, o["reason"], labels), "record_id": o["record_id"],
                     "url": request.route_path("page.detail", entity=entity.name, id=o["record_id"]) if linkable else None})
    base = request.route_path("page.import.report", entity=entity.name, token=session.token)
    counts = report["counts"]
    run_row = import_sessions.run_row(records, report["import_id"]) if saved else None
    return render(request, "import_report.pt", {
        "entity": entity, "entity_label": entity_label(entity, request.locale_name, plural=True), "report": report,
        "filename": session.state["filename"], "saved": saved, "rows": rows,
        "counts": [(a, _(request, ACTION_LABELS[a]), counts.get(a, 0)) for a in ACTIONS],
        "filters": [("", _(request, "All rows"), len(report["outcomes"]), show == "")] +
                   [(a, _(request, ACTION_LABELS[a]), counts.get(a, 0), show == a) for a in ACTIONS if counts.get(a)],
        "base_url": base, "show": show,
        "next_url": f"{base}?show={show}&offset={offset + REPORT_PAGE}" if len(chosen) > offset + REPORT_PAGE else None,
        "previous_url": f"{base}?show={show}&offset={max(0, offset - REPORT_PAGE)}" if offset else None,
        "mode": _(request, MODE_LABELS.get(report["mode"], report["mode"])),
        "match": "、".join(labels.get(m, m) for m in session.state.get("match") or []),
        "would_fail": report["phase"] == "check" and counts.get("error") and not session.state.get("partial"),
        "errors_url": request.route_path("page.import.errors", entity=entity.name, token=session.token)
        if session.errors_file.exists() else None,
        "run_url": request.route_path("page.import.run", entity=entity.name, token=session.token),
        "mapping_url": request.route_path("page.import.mapping", entity=entity.name, token=session.token),
        "progress_url": request.route_path("page.import.progress", entity=entity.name, token=session.token),
        "revert_url": request.route_path("page.import.revert", entity=entity.name, id=report["import_id"])
        if run_row and run_row["status"] == "done" else None,
        "reverted": run_row is not None and run_row["status"] == "reverted",
        "list_url": request.route_path("page.list", entity=entity.name),
        "restart_url": request.route_path("page.import", entity=entity.name),
    })


PROBLEMS = {  # (field, code) of the errors of crm.core.tabular / import_sessions / importer → the user's language
    ("file", "unsupported format"): N_("use a .xlsx or .csv file"),
    ("file", "too large"): N_("the file is too large"),
    ("file", "unreadable"): N_("the file is damaged, or not really of the kind its name says"),
    ("file", "empty"): N_("the file is empty"),
    ("file", "unknown encoding"): N_("the CSV file is neither UTF-8 nor GBK (save it again as CSV UTF-8)"),
    ("file", "no known columns"): N_("no column is imported: map at least one column to a field"),
    ("match", "required"): N_("updating needs duplicate criteria: choose the fields that identify a record"),
    ("match", "column missing"): N_("a duplicate criterion has no column in the file: map a column to it, or choose another criterion"),
}


def problem_text(request, error):
    """A file or choice problem in the user's language (the error's own message when unknown)."""
    for item in error.fields.items():
        if item in PROBLEMS:
            return _(request, PROBLEMS[item])
    return error.message


CELL_PROBLEMS = [  # crm.core.importer.CellReader's messages about one cell
    (re.compile(r"'(?P<value>.*)' is not in dictionary \w+"), N_("“${value}” is not one of the choices")),
    (re.compile(r"no user '(?P<value>.*)'"), N_("there is no user “${value}”")),
    (re.compile(r"not a whole number: '(?P<value>.*)'"), N_("“${value}” is not a whole number")),
    (re.compile(r"use 是 or 否, not '(?P<value>.*)'"), N_("write 是 or 否, not “${value}”")),
    (re.compile(r"no (?P<what>.+) named '(?P<value>.*)'"), N_("there is no ${what} named “${value}”")),
    (re.compile(r"more than one (?P<what>.+) named '(?P<value>.*)'"), N_("there are several ${what} named “${value}”")),
]
FIELD_PROBLEM = re.compile(r"(?P<field>[a-z][a-z0-9_]*): (?P<problem>.+)")


def reason_text(request, reason, labels):
    """The importer's reason in the user's language, field names as labels ("region: '火星' is
    not in dictionary region" → "所属区域：“火星”不在可选值中"); unknown wording is shown as it is."""
    if not reason:
        return ""
    for pattern, msgid in REASONS:
        found = pattern.fullmatch(reason)
        if found:
            values = found.groupdict()
            if "fields" in values:
                values["fields"] = "、".join(labels.get(n.strip(), n.strip()) for n in values["fields"].split(","))
            return _(request, msgid, **values)
    parts = []
    for part in reason.split("; "):
        found = FIELD_PROBLEM.fullmatch(part)
        if not found or found.group("field") not in labels:
            parts.append(part)
            continue
        problem = found.group("problem")
        for pattern, msgid in CELL_PROBLEMS:
            cell = pattern.fullmatch(problem)
            if cell:
                problem = _(request, msgid, **cell.groupdict())
                break
        parts.append(_(request, "${field}: ${problem}", field=labels[found.group("field")], problem=problem))
    return "; ".join(parts)


@view_config(route_name="page.import.errors", request_method="GET", permission=security.READ)
def errors(request):
    entity = importable_entity(request)
    session = wizard(request, entity)
    if not session.errors_file.exists():
        raise NotFound("no errors file")
    stem = Path(session.state["filename"]).stem
    response = FileResponse(str(session.errors_file), request=request,
                            content_type=mimetypes.guess_type(session.errors_file.name)[0] or "application/octet-stream")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(stem + '-' + _(request, 'errors') + session.state['suffix'])}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- undo ---------------------------------------------------------------------------------------

@view_config(route_name="page.import.revert", request_method="POST", permission=security.READ)
def revert(request):
    """Undo a finished import (its own user's, or any for administrators): created records to the
    recycle bin, updated ones back to their before-images — each through the record service."""
    entity = importable_entity(request)
    records = request.records
    row = import_sessions.run_row(records, int(request.matchdict["id"]))
    me = request.identity
    if row is None or row["entity"] != entity.name or not (me.get("is_admin") or row["created_by"] == me["id"]):
        raise NotFound("no such import")
    try:
        done = importer.revert(records, row["id"])
    except (BadRequest, Forbidden, NotFound) as e:
        flash(request, _(request, "The import could not be reverted: ${reason}", reason=e.message), "error")
    else:
        flash(request, _(request, "The import was reverted: ${removed} records moved to the recycle bin, ${restored} restored.",
                         removed=done["removed"], restored=done["restored"]), "success")
    back = request.POST.get("back", "")
    if back.startswith(request.route_path("page.import", entity=entity.name)):
        return HTTPFound(back)
    return HTTPFound(request.route_path("page.import", entity=entity.name))
