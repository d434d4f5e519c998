from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from tarifa.api import switch_endpoints
from tarifa.api.api import api, not_found
from tarifa.throttle.forms import AdminLoginForm
from tarifa.throttle.views import admin_password_change

# The back office registers its pages here, when the URLs are first needed (a request, `check`), not in
# every process that starts Django: a `tarifa` command that serves no page skips importing them
# (settings: SimpleAdminConfig).
admin.autodiscover()

# Log-ins are throttled per user name and per client address (tarifa.throttle).
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Before the admin's own: the same page with the old password throttled like a log-in.
    path("admin/password_change/", admin_password_change),
    path("admin/", admin.site.urls),
    # The customer portal (tarifa.portal): customer users only; staff use /admin/.
    path("portal/", include("tarifa.portal.urls")),
    # The switch endpoints (hot path), before the ninja API that documents them.
    path("api/v1/calls/authorize", switch_endpoints.authorize_view),
    path("api/v1/calls/<call_id>/end", switch_endpoints.end_view),
    path("api/v1/", api.urls),
    # Any other path under /api/: a 404 problem document, not Django's HTML page.
    re_path(r"^api(?:/|$)", not_found),
]
