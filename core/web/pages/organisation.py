"""Administration of the organisation: users (``/app/admin/users``) and departments
(``/app/admin/departments``), for administrators and holders of ``users.manage``.

Every change goes through :mod:`crm.core.directory` (and :mod:`crm.core.tokens` for a user's API
tokens); a refused change shows the form again with the input kept and a message beside each
field (422). Two rules guard against escalation: only an administrator may make someone an
administrator or change an administrator's account, and nobody may disable their own account or
drop their own administrator flag.
"""
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from crm.core import auth, directory, logins, tokens
from crm.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crm.core.registry import text_in
from crm.core.web import security
from crm.core.web.pages.account import token_rows
from crm.core.web.pages.helpers import Display, _, flash, problem_texts, render, require_user_manager


def _int(value):
    value = str(value or "").strip()
    return int(value) if value.isdigit() else None


def _is_admin(request):
    return bool(request.identity.get("is_admin"))


def _choices(request, current_department=None):
    """Departments (active ones, plus the current) indented by depth, active users, roles."""
    session = request.dbsession
    departments = [(d["id"], "\u3000" * d["depth"] + d["name"]) for d in directory.department_tree(session)
                   if d["active"] or d["id"] == current_department]
    display = Display(request)
    return {"departments": departments, "user_choices": display.user_choices(),
            "roles": [(r["name"], text_in(r["label"], request.locale_name)) for r in directory.list_roles(session)]}


# --- users -------------------------------------------------------------------------------------

@view_config(route_name="page.admin.users", request_method="GET", permission=security.READ)
def users_list(request):
    require_user_manager(request)
    session = request.dbsession
    q = request.GET.get("q", "").strip()
    department = _int(request.GET.get("department"))
    state = request.GET.get("state", "active")
    active = {"active": True, "inactive": False}.get(state)
    rows, more = directory.list_users(session, q=q or None, department_id=department, active=active)
    display = Display(request)
    now = request.registry.crm.clock()
    people = [{**row, "department": display.departments.get(row["department_id"], ("", None))[0],
               "manager": display.users.get(row["manager_id"], ("", True))[0] if row["manager_id"] else "",
               "locked_until": logins.locked_until(row, now),
               "url": request.route_path("page.admin.user", id=row["id"]),
               "access_url": request.route_path("page.admin.access", _query={"user": row["id"], "entity": "customer"})}
              for row in rows]
    return render(request, "admin_users.pt", {"people": people, "more": more, "q": q, "department": department,
                                              "state": state, **_choices(request)})


@view_config(route_name="page.admin.users.new", permission=security.READ)
def user_new(request):
    require_user_manager(request)
    values = {"username": "", "display_name": "", "email": "", "phone": "", "department_id": None, "manager_id": None,
              "roles": [], "is_admin": False}
    errors, message = {}, None
    if request.method == "POST":
        post = request.POST
        values = _user_input(request, post)
        values["username"] = post.get("username", "").strip()
        password, again = post.get("password", ""), post.get("password_again", "")
        if password != again:
            errors["password_again"] = "mismatch"
        else:
            try:
                user_id = directory.add_user(request.dbsession, values["username"], password, now=request.registry.crm.clock(),
                                             admin=values["is_admin"], department_id=values["department_id"],
                                             manager_id=values["manager_id"], role_names=values["roles"],
                                             display_name=values["display_name"], email=values["email"], phone=values["phone"])
            except (ValidationFailed, Conflict) as e:
                errors = e.fields or {"username": "invalid"}
            else:
                flash(request, _(request, "The user ${name} was created.", name=values["username"]), "success")
                return HTTPFound(request.route_path("page.admin.user", id=user_id))
        message = _(request, "Please check your input")
    return render(request, "admin_user.pt", {"user": None, "values": values, "errors": problem_texts(request, errors),
                                             "message": message, "tokens": [], "may_admin": _is_admin(request),
                                             "locked_until": None, "min_password": auth.MIN_PASSWORD, "password_errors": {},
                                             **_choices(request)}, status=422 if errors else 200)


def _user_input(request, post):
    values = {"display_name": post.get("display_name", "").strip(), "email": post.get("email", "").strip(),
              "phone": post.get("phone", "").strip(), "department_id": _int(post.get("department_id")),
              "manager_id": _int(post.get("manager_id")), "roles": post.getall("roles"), "active": bool(post.get("active")),
              "is_admin": bool(post.get("is_admin"))}
    if not _is_admin(request):
        values["is_admin"] = False   # only administrators make administrators
    return values


def _managed_user(request):
    """The user a URL names; holders of users.manage may not touch administrators."""
    user = directory.user_detail(request.dbsession, int(request.matchdict["id"]))
    if user["is_admin"] and not _is_admin(request):
        raise Forbidden("only administrators change administrators")
    return user


@view_config(route_name="page.admin.user", permission=security.READ)
def user_edit(request):
    require_user_manager(request)
    user = _managed_user(request)
    values, errors, message = {**user}, {}, None
    if request.method == "POST":
        values = {**user, **_user_input(request, request.POST)}
        changes = {k: values[k] for k in ("display_name", "email", "phone", "department_id", "manager_id", "active")}
        if _is_admin(request):
            changes["is_admin"] = values["is_admin"]
        try:
            directory.update_user(request.dbsession, user["id"], role_names=values["roles"], by=request.identity["id"], **changes)
        except ValidationFailed as e:
            errors = e.fields or {"display_name": "invalid"}
            message = _(request, "Please check your input")
        else:
            flash(request, _(request, "The changes were saved."), "success")
            return HTTPFound(request.route_path("page.admin.user", id=user["id"]))
    return _user_page(request, user, values, errors, message)


def _user_page(request, user, values, errors=None, message=None, password_errors=None):
    now = request.registry.crm.clock()
    rows = token_rows(request, user["id"], lambda token_id: request.route_path("page.admin.user.token.revoke", id=user["id"],
                                                                                token_id=token_id))
    status = 422 if errors or password_errors else 200
    return render(request, "admin_user.pt", {
        "user": user, "values": values, "errors": problem_texts(request, errors), "message": message,
        "password_errors": problem_texts(request, password_errors), "tokens": rows, "may_admin": _is_admin(request),
        "min_password": auth.MIN_PASSWORD,
        "locked_until": logins.locked_until(user, now),
        "access_url": request.route_path("page.admin.access", _query={"user": user["id"], "entity": "customer"}),
        **_choices(request, user.get("department_id"))}, status=status)


@view_config(route_name="page.admin.user.password", request_method="POST", permission=security.READ)
def user_password(request):
    require_user_manager(request)
    user = _managed_user(request)
    password, again = request.POST.get("password", ""), request.POST.get("password_again", "")
    try:
        if password != again:
            raise ValidationFailed("the passwords differ", {"password_again": "mismatch"})
        directory.reset_password(request.dbsession, user["id"], password)
    except ValidationFailed as e:
        return _user_page(request, user, user, password_errors=e.fields)
    flash(request, _(request, "The new password was set; the user's other sessions have ended."), "success")
    return HTTPFound(request.route_path("page.admin.user", id=user["id"]))


@view_config(route_name="page.admin.user.unlock", request_method="POST", permission=security.READ)
def user_unlock(request):
    require_user_manager(request)
    user = _managed_user(request)
    directory.unlock_user(request.dbsession, user["id"])
    flash(request, _(request, "The account was unlocked."), "success")
    return HTTPFound(request.route_path("page.admin.user", id=user["id"]))


@view_config(route_name="page.admin.user.token.revoke", request_method="POST", permission=security.READ)
def user_token_revoke(request):
    require_user_manager(request)
    user = _managed_user(request)
    if not tokens.revoke_id(request.dbsession, int(request.matchdict["token_id"]), user_id=user["id"], now=request.registry.crm.clock()):
        raise NotFound("no such live token of this user")
    flash(request, _(request, "The token was revoked."), "success")
    return HTTPFound(request.route_path("page.admin.user", id=user["id"]) + "#tokens")


# --- departments -----------------------------------------------------------------------------------

@view_config(route_name="page.admin.departments", permission=security.READ)
def departments_page(request):
    require_user_manager(request)
    values, errors = {"name": "", "parent_id": None, "manager_id": None}, {}
    if request.method == "POST":
        post = request.POST
        values = {"name": post.get("name", "").strip(), "parent_id": _int(post.get("parent_id")), "manager_id": _int(post.get("manager_id"))}
        try:
            directory.create_department(request.dbsession, values["name"], values["parent_id"], values["manager_id"])
        except ValidationFailed as e:
            errors = e.fields
        else:
            flash(request, _(request, "The department ${name} was created.", name=values["name"]), "success")
            return HTTPFound(request.route_path("page.admin.departments"))
    display = Display(request)
    tree = [{**d, "manager": display.users.get(d["manager_id"], ("", True))[0] if d["manager_id"] else "",
             "url": request.route_path("page.admin.department", id=d["id"]),
             "people_url": request.route_path("page.admin.users", _query={"department": d["id"], "state": "all"})}
            for d in directory.department_tree(request.dbsession)]
    return render(request, "admin_departments.pt", {"tree": tree, "values": values, "errors": problem_texts(request, errors),
                                                    **_choices(request)}, status=422 if errors else 200)


@view_config(route_name="page.admin.department", permission=security.READ)
def department_edit(request):
    require_user_manager(request)
    session = request.dbsession
    department = directory.get_department(session, int(request.matchdict["id"]))
    values, errors = dict(department), {}
    if request.method == "POST":
        post = request.POST
        values = {**department, "name": post.get("name", "").strip(), "parent_id": _int(post.get("parent_id")),
                  "manager_id": _int(post.get("manager_id")), "active": bool(post.get("active"))}
        try:
            directory.update_department(session, department["id"], name=values["name"], parent_id=values["parent_id"],
                                        manager_id=values["manager_id"], active=values["active"])
        except ValidationFailed as e:
            errors = e.fields
        else:
            flash(request, _(request, "The changes were saved."), "success")
            return HTTPFound(request.route_path("page.admin.departments"))
    tree = directory.department_tree(session)
    below = {department["id"]}
    for d in tree:  # the department and its sub-departments cannot be its parent
        if d["parent_id"] in below:
            below.add(d["id"])
    parents = [(d["id"], "\u3000" * d["depth"] + d["name"]) for d in tree
               if d["id"] not in below and (d["active"] or d["id"] == department["parent_id"])]
    return render(request, "admin_department.pt", {"department": department, "values": values, "parents": parents,
                                                   "errors": problem_texts(request, errors), **_choices(request)},
                  status=422 if errors else 200)
