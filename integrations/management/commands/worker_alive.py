from django.core.management.base import BaseCommand, CommandError

from ...health import cluster_alive


class Command(BaseCommand):
    help = (
        "Liveness probe of a worker machine: exit 0 when a django-q2 cluster on this host has been "
        "seen running within --max-age seconds, 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=int, default=60, help="seconds (default 60)")
        parser.add_argument("--any-host", action="store_true", help="accept a cluster on any host")

    def handle(self, *args, max_age, any_host, **options):
        alive, description = cluster_alive(max_age=max_age, any_host=any_host)
        if not alive:
            raise CommandError(description)
        self.stdout.write(description)
