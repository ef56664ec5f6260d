from django.core.management.base import BaseCommand

from apps.demo.services import DEMO_LOGINS, PLATFORM_ADMIN, demo_seed


class Command(BaseCommand):
    help = "Create the demo tenant and its people (once; a second run changes nothing)."

    def handle(self, *args, **options):
        tenant, created = demo_seed()
        verb = "Created" if created else "Found"
        self.stdout.write(f"{verb} demo tenant '{tenant.name}' at /t/{tenant.slug}/. Logins:")
        for login in (*DEMO_LOGINS, PLATFORM_ADMIN):
            self.stdout.write(f"  {login.role:<15} {login.email:<30} {login.password}")
