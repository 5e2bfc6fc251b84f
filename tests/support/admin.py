"""Helpers of the admin tests: every URL of the app's model admins, and the POST of a change form."""

from django.contrib import admin

from integrations.models import RecordError, RunChange


def sample_object_ids(world):
    return {
        "customer": [world.customer.pk],
        "apikey": [world.extra["key"].pk],
        "integration": [world.products.pk, world.feed.pk],
        "syncrun": [world.succeeded.pk, world.held.pk, world.failed.pk, world.receiving.pk, world.stuck.pk],
        "recorderror": list(RecordError.objects.filter(run=world.failed).values_list("pk", flat=True)),
        "webhookdelivery": [world.delivery.pk],
        "runchange": list(RunChange.objects.values_list("pk", flat=True)[:3]),
    }


def admin_urls(world):
    """(model name, url name, url) for every URL pattern of every model admin of the app."""
    ids = sample_object_ids(world)
    found = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "integrations":
            continue
        name = model._meta.model_name
        for pattern in model_admin.get_urls():
            route = str(pattern.pattern)
            url_name = pattern.name or ""
            if "<path:object_id>" in route:
                for pk in ids[name]:
                    found.append(
                        (
                            name,
                            url_name,
                            "/admin/integrations/" + name + "/" + route.replace("<path:object_id>", str(pk)),
                        )
                    )
            elif "<int:customer_id>" in route:
                key = world.extra["key"]
                found.append(
                    (
                        name,
                        url_name,
                        "/admin/integrations/"
                        + name
                        + "/"
                        + route.replace("<int:customer_id>", str(key.customer_id)).replace("<str:prefix>", key.prefix),
                    )
                )
            else:
                found.append((name, url_name, f"/admin/integrations/{name}/{route}"))
    return found


def change_form_data(response):
    """The POST a browser would send for an admin change form as rendered (inlines included)."""
    data = {}

    def put(form, name):
        value = form[name].value()
        if value is None or value is False:
            return
        data[form.add_prefix(name)] = "on" if value is True else value

    form = response.context["adminform"].form
    for name in form.fields:
        put(form, name)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for sub in formset.forms:
            for name in sub.fields:
                put(sub, name)
    return data


def page_messages(response):
    """The messages framework's messages a response showed."""
    return [str(m) for m in response.context["messages"]] if response.context else []


def integration_post(owner, **overrides):
    """The POST of the admin's integration add form, valid unless `overrides` break it."""
    data = {
        "customer": owner.pk,
        "slug": "erp",
        "target": "catalog.product",
        "default_mode": "full",
        "is_active": "on",
        "field_map": '{"Title": "name", "Legacy": null}',
        "adapter": "",
        "max_error_rate": "5",
        "max_deletes_percent": "20",
        "webhook_url": "",
        "webhook_secret": "",
        "contacts": "a@acme.example",
    }
    data.update(overrides)
    return data
