from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from django.contrib.auth.signals import user_login_failed

        from apps.accounts.lockout import address_failure_record

        # Every failed login counts against its address, whichever form or API made it.
        user_login_failed.connect(address_failure_record, dispatch_uid="login-address-throttle")
