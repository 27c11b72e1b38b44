"""Error pages for everything outside ``/api/v1`` (the API answers JSON, see
:mod:`crm.core.web.api`): 404 for what does not exist or is out of the user's reach, 403 for a
refused action, 400 for malformed input or a missing CSRF token, a login redirect for anonymous
visitors, and a logged 500 for bugs. Never a traceback, never a 500 for bad input."""
import logging
from urllib.parse import urlencode

from pyramid.csrf import get_csrf_token
from pyramid.exceptions import BadCSRFToken
from pyramid.httpexceptions import HTTPException, HTTPFound
from pyramid.view import forbidden_view_config, notfound_view_config, view_config

from crm.core.errors import CrmError
from crm.core.web.pages.helpers import _, render

log = logging.getLogger(__name__)


def error_page(request, status, title, message):
    request.response.status_int = status
    try:
        get_csrf_token(request)  # so the layout's forms (logout, language) still work
    except Exception:
        pass
    return render(request, "error.pt", {"status": status, "heading": title, "message": message}, status=status)


def _titles(request):
    return {400: _(request, "The request could not be understood"), 403: _(request, "You may not do this"),
            404: _(request, "Not found"), 405: _(request, "Not allowed here"), 409: _(request, "Changed meanwhile"),
            422: _(request, "Please check your input"), 500: _(request, "Something went wrong")}


@notfound_view_config(api=False)
def not_found(exc, request):
    return error_page(request, 404, _titles(request)[404], _(request, "The page or record does not exist, or you may not see it."))


@forbidden_view_config(api=False)
def forbidden(exc, request):
    if request.identity is None:
        if request.method == "GET":
            return HTTPFound(request.route_path("page.login") + "?" + urlencode({"next": request.path_qs}))
        return HTTPFound(request.route_path("page.login"))
    return error_page(request, 403, _titles(request)[403], _(request, "Your roles do not allow this action."))


@view_config(context=BadCSRFToken, api=False)
def bad_csrf(exc, request):
    return error_page(request, 400, _titles(request)[400],
                      _(request, "The form has expired or did not come from this site. Go back, reload the page and try again."))


@view_config(context=CrmError, api=False)
def crm_error(exc, request):
    status = exc.status if 400 <= exc.status < 500 else 500
    if status == 500:
        log.error("%s %s: %s", request.method, request.path, exc.message)
    titles = _titles(request)
    message = {404: _(request, "The page or record does not exist, or you may not see it."),
               403: _(request, "Your roles do not allow this action.")}.get(status, exc.message)
    if status == 401:
        return HTTPFound(request.route_path("page.login"))
    return error_page(request, status, titles.get(status, titles[400]), message)


@view_config(context=HTTPException, api=False)
def http_exception(exc, request):
    if 300 <= exc.code < 400:
        return exc
    titles = _titles(request)
    return error_page(request, exc.code, titles.get(exc.code, exc.title), exc.explanation or exc.title)


@view_config(context=UnicodeDecodeError, api=False)
def bad_encoding(exc, request):
    return error_page(request, 400, _titles(request)[400], _(request, "The address or the form is not valid UTF-8."))


@view_config(context=Exception, api=False)
def server_error(exc, request):
    log.exception("unexpected error in %s %s", request.method, request.environ.get("PATH_INFO"))
    return error_page(request, 500, _titles(request)[500], _(request, "An unexpected error occurred; it has been logged."))
