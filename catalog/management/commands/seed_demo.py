"""`make run`'s demo: customer, integration, API key, staff user, and the sample file synced once.

Run again (every `make run`), it changes nothing: the data, the key and the password stay, and it
prints again how to log in. A key's secret is stored hashed and cannot be shown twice, so the first
run writes the key and the admin password to files of their own under var/ (mode 0600, like an SSH
key: the demo's only copy, readable by its owner only), and later runs print those paths. A file
that is gone, or that no longer matches (the database was reset), is replaced by a new key or
password, written the same way.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from integrations import services
from integrations.conf import conf
from integrations.models import ApiKey, Customer, Integration, SyncRun
from integrations.queue import inline

KEY_NAME = "make run"


class Command(BaseCommand):
    help = "Seed the demo (make run) once: customer, integration, API key, staff user, the sample file synced."

    def add_arguments(self, parser):
        parser.add_argument("--sample", default=str(Path(settings.BASE_DIR) / "samples" / "products.json"))
        parser.add_argument(
            "--state-dir",
            default=str(Path(settings.BASE_DIR) / "var"),
            help="where the demo's API key and admin password are kept (default: var/)",
        )

    def handle(self, *args, sample, state_dir, **options):
        state = Path(state_dir)
        customer = Customer.objects.filter(slug="demo").first() or services.customer_create(
            slug="demo", name="Demo Retail Ltd", emails=["tech@demo.example"]
        )
        integration = Integration.objects.filter(
            customer=customer, slug="products"
        ).first() or services.integration_create(
            customer=customer, slug="products", target="catalog.product", max_error_rate=0.5
        )
        key_file, key_new = state / "demo-api-key.txt", False
        key = _usable_key(key_file)
        if key is None:
            key, raw = services.api_key_create(customer=customer, name=KEY_NAME)
            _write_secret(key_file, raw)
            key_new = True
        password_file, password_new = state / "demo-admin-password.txt", False
        user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        password = _read(password_file)
        if not (user.is_staff and user.is_superuser and password and user.check_password(password)):
            password = secrets.token_urlsafe(12)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            _write_secret(password_file, password)
            password_new = True
        run = integration.runs.order_by("created_at").first()
        sample_new = run is None
        if sample_new:  # once: a second full sync of the sample would only be held for review
            with open(sample, "rb") as stream, inline():
                run = services.upload_create(
                    integration=integration, stream=stream, filename=sample, source=SyncRun.Source.COMMAND
                )
            run.refresh_from_db()
        base = conf.BASE_URL.rstrip("/")
        self.stdout.write(self.style.SUCCESS("Demo ready." if sample_new else "Demo already seeded; nothing changed."))
        self.stdout.write(f"  customer / integration : {customer.slug} / {integration.slug}")
        self.stdout.write(
            f"  sample sync            : run {run.pk} {run.status} ({run.message})"
            if sample_new
            else f"  sample sync            : done earlier (run {run.pk}, {run.status})"
        )
        self.stdout.write(
            f"  admin                  : {base}/admin/  user admin, password "
            + (f"{password}  (saved in {password_file})" if password_new else f"in {password_file}")
        )
        if key_new:
            self.stdout.write(f"  API key                : {raw}  (saved in {key_file})")
        else:
            self.stdout.write(f"  API key                : {key.prefix}.…  (the whole key is in {key_file})")
        self.stdout.write(f"  API                    : {base}/api/v1/  (docs: {base}/api/v1/docs/)")
        if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
            self.stdout.write(
                f"  e-mails                : written to {settings.EMAIL_FILE_PATH}/ (set EMAIL_URL to send them)"
            )


def _usable_key(path: Path):
    """The active demo key whose secret the file holds, or None."""
    raw = _read(path)
    if not raw:
        return None
    try:
        key = ApiKey.objects.get_from_key(raw)
    except ApiKey.DoesNotExist:
        return None
    return key if not key.revoked and key.customer.slug == "demo" else None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # created anew, so the mode below is the file's from its first byte
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
