"""OpenAPI extensions for drf-spectacular: the API key scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
