"""The ``crm`` command line (contract section 4).

Exit codes: 0 success, 1 failure with a one-line reason on stderr, 2 usage error (click's own).
"""
import getpass
import sys
import warnings

# pyramid imports pkg_resources, which warns about our mapped namespace package: noise for users
warnings.filterwarnings("ignore", message="Module crm was already imported")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

import click

from crm.core import instance
from crm.core.errors import CrmError
from crm.core.registry import MetadataError

DIR = click.argument("directory", default=".", type=click.Path(file_okay=False))


class Failure(click.ClickException):
    """A one-line reason on stderr and exit code 1."""
    exit_code = 1

    def show(self, file=None):
        click.echo(f"crm: {self.message}", err=True)


def runtime_for(directory):
    from crm.core.runtime import Runtime
    runtime = Runtime(instance.settings(directory))
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(runtime.dispose)
    return runtime


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MetadataError as e:
            raise Failure(str(e).replace("\n", " ") if len(e.problems) == 1 else str(e))
        except CrmError as e:
            raise Failure(e.message)
        except FileNotFoundError as e:
            raise Failure(str(e))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crm-framework")
def cli():
    """A plugin-based, metadata-driven CRM. Commands act on an instance folder DIR (default: .)."""


@cli.command()
@DIR
@click.option("--database-url", help="SQLAlchemy URL (default: a SQLite file in DIR).")
@click.option("--admin-password", help="Create the user admin with this password.")
def init(directory, database_url, admin_password):
    """Create an instance folder DIR with crm.ini, custom/ and files/, and its database."""
    path = instance.init(directory, database_url)
    runtime = runtime_for(path)
    runtime.upgrade()
    if admin_password:
        _create_user(runtime, "admin", admin_password, admin=True)
    click.echo(f"instance ready in {path}")


@cli.command()
@DIR
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=6543, show_default=True, type=int)
def serve(directory, host, port):
    """Serve the instance DIR (the short form of `pserve DIR/crm.ini`)."""
    from pyramid.paster import get_app, setup_logging
    import waitress
    ini = str(instance.ini_path(directory))
    setup_logging(ini)
    app = get_app(ini, "main")
    click.echo(f"CRM at http://{host}:{port}/")
    waitress.serve(app, host=host, port=port, threads=8)


@cli.command()
@DIR
@click.option("--customers", default=300, show_default=True, help="How many demo customers.")
@click.option("--serve/--no-serve", "serve_after", default=True, show_default=True, help="Serve the instance afterwards.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=6543, show_default=True, type=int)
@click.pass_context
def demo(ctx, directory, customers, serve_after, host, port):
    """Create (or reuse) instance DIR with demo data and an admin account, then serve it."""
    from crm.core import demo as demo_data
    path = instance.init(directory)
    runtime = runtime_for(path)
    runtime.upgrade()
    password = demo_data.ensure_admin(runtime)
    demo_data.generate(runtime, customers, progress=sys.stderr.isatty())
    click.echo(f"CRM demo in {path}")
    click.echo(f"  URL:   http://{host}:{port}/")
    click.echo(f"  login: admin / {password}" if password else "  login: admin (password unchanged)")
    if serve_after:
        ctx.invoke(serve, directory=str(path), host=host, port=port)


@cli.group()
def db():
    """Database schema: migrations and metadata sync."""


@db.command()
@DIR
def upgrade(directory):
    """Apply core and plugin migrations, then sync tables with the metadata (additively)."""
    sync_plan, seeded = runtime_for(directory).upgrade()
    for line in sync_plan.summary:
        click.echo(line)
    for line in sync_plan.skipped:
        click.echo(f"skipped: {line}")
    click.echo(f"schema up to date ({len(sync_plan.operations)} changes, {seeded} dictionary items added)")


@db.command()
@DIR
@click.option("--sql/--no-sql", default=True, show_default=True, help="Also print the SQL.")
def diff(directory, sql):
    """Show what `crm db upgrade` would change in the entity tables, changing nothing."""
    sync_plan, text = runtime_for(directory).diff()
    if sync_plan.empty and not sync_plan.skipped:
        click.echo("no changes")
    for line in sync_plan.summary:
        click.echo(line)
    for line in sync_plan.skipped:
        click.echo(f"skipped: {line}")
    if sql and text.strip():
        click.echo(text.rstrip())


@cli.group()
def users():
    """User accounts."""


def _create_user(runtime, username, password, admin=False):
    from crm.core import auth
    with runtime.transaction() as records:
        return auth.create_user(records.session, username, password, admin=admin, now=records.now())


@users.command("create")
@DIR
@click.argument("username")
@click.option("--password", help="Asked for when omitted.")
@click.option("--admin", is_flag=True, help="Administrator (all rights).")
@click.option("--department", help="Department name.")
@click.option("--manager", help="Username of the user's manager (上级主管).")
@click.option("--role", "role_names", multiple=True, help="Role name (repeatable), e.g. sales_rep.")
def users_create(directory, username, password, admin, department, manager, role_names):
    """Create user USERNAME in instance DIR."""
    from crm.core import directory as org
    runtime = runtime_for(directory)
    password = _read_password(password)
    with runtime.transaction() as records:
        session = records.session
        department_id = org.department_by_name(session, department) if department else None
        manager_id = _user_id(session, manager) if manager else None
        user_id = org.add_user(session, username, password, now=records.now(), admin=admin, department_id=department_id,
                               manager_id=manager_id, role_names=role_names)
    click.echo(f"user {username} created (id {user_id}{', admin' if admin else ''})")


def _read_password(password):
    """The --password value, else one line from stdin (scripts) or asked twice (a terminal)."""
    if password is not None:
        return password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise Failure("the passwords differ")
    return password


def _user_id(session, username):
    from crm.core import auth
    found = auth.get_user(session, username=username)
    if not found:
        raise Failure(f"no user {username!r}")
    return found["id"]


@users.command("password")
@DIR
@click.argument("username")
@click.option("--password", help="Asked for when omitted (or read from stdin).")
def users_password(directory, username, password):
    """Set a new password for USERNAME (also lifts a lockout)."""
    from crm.core import directory as org
    password = _read_password(password)
    with runtime_for(directory).transaction() as records:
        org.reset_password(records.session, _user_id(records.session, username), password)
    click.echo(f"password of {username} changed")


@users.command("unlock")
@DIR
@click.argument("username")
def users_unlock(directory, username):
    """Lift the lockout of USERNAME after too many failed logins."""
    from crm.core import directory as org
    with runtime_for(directory).transaction() as records:
        org.unlock_user(records.session, _user_id(records.session, username))
    click.echo(f"{username} unlocked")


@cli.group()
def tokens():
    """API tokens (Authorization: Bearer <token>)."""


@tokens.command("create")
@DIR
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Stop working after this many days (default: never).")
def tokens_create(directory, username, name, expires_days):
    """Create an API token for USERNAME; prints the token (shown only this once) on stdout."""
    from crm.core import tokens as api_tokens
    with runtime_for(directory).transaction() as records:
        now = records.now()
        expires_at = api_tokens.expiry(now, expires_days)
        token = api_tokens.create_token(records.session, _user_id(records.session, username), name=name,
                                        expires_at=expires_at, now=now)
    click.echo(token)
    until = f", valid until {expires_at:%Y-%m-%d %H:%M}" if expires_at else ", no expiry"
    click.echo(f"token for {username} created{until}; it is not shown again", err=True)


@tokens.command("list")
@DIR
@click.argument("username", required=False)
def tokens_list(directory, username):
    """List the API tokens (never their text) of USERNAME, or of everyone."""
    from crm.core import tokens as api_tokens
    with runtime_for(directory).transaction(write=False) as records:
        user_id = _user_id(records.session, username) if username else None
        rows = api_tokens.list_tokens(records.session, user_id, now=records.now())
    if not rows:
        click.echo("no tokens")
    for row in rows:
        click.echo(f"{row['id']:>5}  {row['username']:<16} {row['status']:<8} {row['name'] or '-':<20} "
                   f"created {_stamp(row['created_at'])}  last used {_stamp(row['last_used_at'])}  expires {_stamp(row['expires_at'])}")


def _stamp(value):
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


@tokens.command("revoke")
@DIR
@click.argument("token_id", type=int)
def tokens_revoke(directory, token_id):
    """Revoke the API token TOKEN_ID (see `crm tokens list`)."""
    from crm.core import tokens as api_tokens
    with runtime_for(directory).transaction() as records:
        revoked = api_tokens.revoke_id(records.session, token_id, now=records.now())
    if not revoked:
        raise Failure(f"no live token {token_id}")
    click.echo(f"token {token_id} revoked")


@cli.group()
def departments():
    """Departments (a tree of any depth)."""


@departments.command("create")
@DIR
@click.argument("name")
@click.option("--parent", help="Name of the parent department.")
def departments_create(directory, name, parent):
    """Create department NAME, under --parent when given."""
    from crm.core import directory as org
    with runtime_for(directory).transaction() as records:
        parent_id = org.department_by_name(records.session, parent) if parent else None
        department_id = org.create_department(records.session, name, parent_id)
    click.echo(f"department {name} created (id {department_id})")


@cli.group()
def plugins():
    """Installed plugins."""


@plugins.command("list")
@DIR
def plugins_list(directory):
    """Name, version, state and contributions of every installed plugin."""
    from crm.core.plugins import describe
    runtime = runtime_for(directory)
    rows = describe(runtime)
    if not rows:
        click.echo("no plugins installed")
    for row in rows:
        click.echo(f"{row['name']:<20} {row['version']:<10} {row['state']:<9} {row['label']}")
        for kind, names in row["contributes"].items():
            click.echo(f"    {kind}: {', '.join(names)}")


@cli.command("import")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("entity")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--match", default="", help="Duplicate criteria: fields separated by commas, e.g. name or name,region.")
@click.option("--mode", type=click.Choice(["create", "update", "upsert"]), default="create", show_default=True)
@click.option("--dry-run", is_flag=True, help="Check every row and report; change nothing.")
@click.option("--partial", is_flag=True, help="Import the good rows even when some rows are bad.")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False), help="Write the bad rows with their reasons here (.xlsx/.csv).")
@click.option("--mapping", help='Column mapping as JSON, e.g. \'{"公司": "name"}\' (remembered for the same headers).')
@click.option("--user", "username", help="Import as this user (their permissions apply); default: the system.")
def import_(directory, entity, file, match, mode, dry_run, partial, errors_file, mapping, username):
    """Import FILE (.xlsx or .csv) into ENTITY of instance DIR."""
    import json as jsonlib
    from tqdm import tqdm
    from crm.core import importer, tabular
    runtime = runtime_for(directory)
    headers, rows = tabular.read(file)
    try:
        mapping = jsonlib.loads(mapping) if mapping else None
    except ValueError as e:
        raise click.UsageError(f"--mapping is not JSON: {e}")
    user = _user(runtime, username)
    bar = tqdm(total=len(rows), desc=f"import {entity}", unit="row", disable=not sys.stderr.isatty())
    try:
        with runtime.transaction(user=user) as records:
            result = importer.run(records, entity, file, mode=mode, match=match.split(","), mapping=mapping,
                                  dry_run=dry_run, partial=partial, progress=bar.update, table=(headers, rows))
    except importer.ImportFailed as failed:
        result = failed.result
    finally:
        bar.close()
    counts = result.counts
    click.echo(("dry run: would have " if dry_run else "") +
               f"created {counts['created']}, updated {counts['updated']}, skipped {counts['skipped']}, errors {counts['error']}")
    if result.unmapped:
        click.echo("columns not imported: " + ", ".join(result.unmapped))
    for outcome in result.outcomes:
        if outcome.action in ("error", "skipped"):
            click.echo(f"row {outcome.row}: {outcome.action}: {outcome.reason}")
    if errors_file and result.errors:
        importer.write_errors(errors_file, headers, rows, result)
        click.echo(f"bad rows written to {errors_file}")
    if result.import_id:
        click.echo(f"import #{result.import_id} committed (undo with: crm imports revert {directory} {result.import_id})")
    if result.errors and not partial and not dry_run:
        raise Failure(f"{counts['error']} rows have errors; nothing was imported")


@cli.group()
def imports():
    """Past imports."""


@imports.command("revert")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("import_id", type=int)
def imports_revert(directory, import_id):
    """Undo import IMPORT_ID: created records to the recycle bin, updated ones restored."""
    from crm.core import importer
    with runtime_for(directory).transaction() as records:
        done = importer.revert(records, import_id)
    click.echo(f"import #{import_id} reverted: {done['removed']} removed, {done['restored']} restored")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("entity")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--q", "query_text", help="Quick search, as in the list.")
@click.option("--filter", "filters", multiple=True, help="field=value or field__op=value (repeatable).")
@click.option("--sort", help="e.g. -created_at,name")
@click.option("--user", "username", help="Export as this user (their permissions apply); default: the system.")
def export(directory, entity, file, query_text, filters, sort, username):
    """Export ENTITY of instance DIR to FILE (.xlsx or .csv by suffix)."""
    from tqdm import tqdm
    from crm.core import exporter, query
    runtime = runtime_for(directory)
    params = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"--filter {item!r}: use field=value")
        params[key] = value
    with runtime.transaction(user=_user(runtime, username), write=False) as records:
        parsed = query.parse_filters(records.entity(entity), params)
        with tqdm(desc=f"export {entity}", unit="row", disable=not sys.stderr.isatty()) as bar:
            count = exporter.export(records, entity, file, filters=parsed, q=query_text, sort=sort, progress=bar.update)
    click.echo(f"{count} records exported to {file}")


def _user(runtime, username):
    if not username:
        return None
    from crm.core import auth
    with runtime.transaction(write=False) as records:
        user = auth.get_user(records.session, username=username)
    if not user:
        raise Failure(f"no user {username!r}")
    return user


@cli.command("backup")
@DIR
@click.option("--output", type=click.Path(dir_okay=False), help="Archive path (default: DIR/backups/crm-<time>.tar.gz).")
def backup_(directory, output):
    """Back up instance DIR: database, crm.ini, custom/ and files/ in one .tar.gz."""
    from crm.core import backup
    click.echo(f"backup written to {backup.backup(runtime_for(directory), output)}")


@cli.command("restore")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore_(directory, archive, yes):
    """Restore instance DIR from ARCHIVE (made by crm backup): replaces its database, custom/ and files/."""
    from crm.core import backup
    if not yes and sys.stdin.isatty() and not click.confirm(f"replace the data of {directory}?"):
        raise Failure("not restored")
    manifest = backup.restore(runtime_for(directory), archive)
    click.echo(f"restored the backup of {manifest['created_at']} ({manifest['database']})")


@cli.group()
def jobs():
    """Scheduled jobs."""


@jobs.command("run")
@DIR
@click.option("--job", "only", multiple=True, help="Run only this job (repeatable).")
def jobs_run(directory, only):
    """Run the jobs that are due today (each at most once per day)."""
    from crm.core.jobs import run_due
    for name, outcome in run_due(runtime_for(directory), only=only):
        click.echo(f"{name}: {outcome}")


def main(argv=None):
    from crm.core.plugins import PluginHost
    try:
        PluginHost().hook.crm_cli_commands(cli=cli)
    except CrmError as e:
        click.echo(f"crm: {e.message}", err=True)
        sys.exit(1)
    return cli.main(args=argv, prog_name="crm")
