"""``/portal/``: the customer portal's pages (tarifa.urls includes them under the ``portal`` namespace)."""

from django.urls import path

from tarifa.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home_page, name="home"),
    path("login/", views.Login.as_view(), name="login"),
    path("logout/", views.logout, name="logout"),
    path("password-reset/", views.Reset.as_view(), name="reset"),
    path("password-reset/sent/", views.ResetDone.as_view(), name="reset_done"),
    path("password-reset/<uidb64>/<token>/", views.ResetConfirm.as_view(), name="reset_confirm"),
    path("password-reset/done/", views.ResetComplete.as_view(), name="reset_complete"),
    path("signup/", views.signup_page, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/verify/<str:token>/", views.signup_verify, name="signup_verify"),
    path("view-as/end/", views.view_as_end, name="view_as_end"),
    path("view-as/<int:customer_id>/", views.view_as_start, name="view_as"),
    path("customers/", views.customers_page, name="customers"),
    path("calls/", views.calls_page, name="calls"),
    path("calls/export.<str:fmt>", views.calls_export, name="calls_export"),
    path("calls/<int:cdr_id>/", views.call_page, name="call"),
    path("accounts/", views.accounts_page, name="accounts"),
    path("accounts/<int:account_id>/", views.account_settings, name="account"),
    path("accounts/<int:account_id>/<slug:group>/", views.account_settings, name="account_settings"),
    path("profile/", views.profile_page, name="profile"),
    path("why/", views.why_page, name="why"),
    path("why/<int:cdr_id>/", views.why_call, name="why_call"),
    path("invoices/", views.invoices_page, name="invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_page, name="invoice"),
    path("invoices/<int:invoice_id>/pay/", views.invoice_pay, name="invoice_pay"),
    path("invoices/<int:invoice_id>/invoice.<str:fmt>", views.invoice_file, name="invoice_file"),
    path("payments/", views.payments_page, name="payments"),
]
