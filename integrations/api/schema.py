"""OpenAPI for drf-spectacular: the API key scheme, and the schema and docs views with the app's own
settings (title, the sidecar's offline assets, only this API's endpoints), so a host needs neither
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] nor SPECTACULAR_SETTINGS (SPEC section 12)."""

import inspect

from drf_spectacular import utils
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from .errors import exception_handler

TITLE = "Integrations API"
SPECTACULAR = {
    "TITLE": TITLE,
    "DESCRIPTION": "Batch API through which customers push their business records.",
    "VERSION": "1.0.0",
    "PREPROCESSING_HOOKS": ["integrations.api.schema.only_this_api"],
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "<prefix>.<secret>",
            "description": "`Authorization: Bearer <prefix>.<secret>`: the key shown once by `create_api_key` "
            "or the admin.",
        }


def extend_schema(**kwargs):
    """drf-spectacular's extend_schema, built on its own AutoSchema whatever the host's
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] is. On a method, extend_schema would otherwise subclass
    that setting's class (DRF's own AutoSchema by default) and the schema view would fail; a schema
    set on the function is the base it takes first."""

    def decorator(target):
        if not inspect.isclass(target) and "schema" not in getattr(target, "kwargs", {}):
            target.schema = AutoSchema
        return utils.extend_schema(**kwargs)(target)

    return decorator


def only_this_api(endpoints, **kwargs):
    """Only this API: not the schema and docs views themselves, nor the host's own DRF views (if any)."""
    from .views import OwnSettingsView

    return [endpoint for endpoint in endpoints if issubclass(getattr(endpoint[3], "cls", object), OwnSettingsView)]


def _sidecar(path: str) -> str:
    from django.templatetags.static import static

    return static(f"drf_spectacular_sidecar/{path}")


class _OwnSettings:
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    # drf-spectacular's own `check --deploy` generates a schema over every view, these included: their
    # get() carries an extend_schema(exclude=True) built on DEFAULT_SCHEMA_CLASS, so it is redone here
    schema = AutoSchema()

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_exception_handler(self):
        return exception_handler


class SchemaView(_OwnSettings, SpectacularAPIView):
    custom_settings = SPECTACULAR


class DocsView(_OwnSettings, SpectacularSwaggerView):
    """Swagger UI from drf_spectacular_sidecar (an installed app): no CDN, whatever the host's settings."""

    title = TITLE

    @staticmethod
    def _swagger_ui_resource(filename):
        return _sidecar(f"swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon():
        return _sidecar("swagger-ui-dist/favicon-32x32.png")


class RedocView(_OwnSettings, SpectacularRedocView):
    title = TITLE

    @staticmethod
    def _redoc_standalone():
        return _sidecar("redoc/bundles/redoc.standalone.js")
