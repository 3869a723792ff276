"""Issue #10: an SBOM component names the referrer it came from, so that it counts only in the
repositories where that referrer is linked; the report's stored counts become those of the
layer scan alone (shared by digest)."""

import django.db.models.deletion
from django.db import migrations, models

SBOM_PREFIX = "sbom:"
SEVERITIES = ("critical", "high", "medium", "low", "unknown")


def link_referrers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # The new column's index is created after this function, in the same transaction:
        # PostgreSQL refuses that while deferred foreign-key checks of these writes are pending.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Component = apps.get_model("scanning", "Component")
    Finding = apps.get_model("scanning", "Finding")
    Manifest = apps.get_model("registry", "Manifest")
    ScanReport = apps.get_model("scanning", "ScanReport")
    origins = set(
        Component.objects.filter(origin__startswith=SBOM_PREFIX).values_list("origin", flat=True)
    )
    by_digest = dict(
        Manifest.objects.filter(
            digest__in=[origin[len(SBOM_PREFIX) :] for origin in origins]
        ).values_list("digest", "pk")
    )
    for origin in origins:
        referrer = by_digest.get(origin[len(SBOM_PREFIX) :])
        sbom = Component.objects.filter(origin=origin)
        if referrer is None:
            sbom.delete()  # its referrer is gone: it counts nowhere
        else:
            sbom.update(referrer_id=referrer)
    # The stored counts become the layer scan's alone.
    touched = ScanReport.objects.filter(sources__icontains=SBOM_PREFIX)
    for report in touched.iterator():
        reports = [report.pk]
        if report.is_index:
            reports = list(
                ScanReport.objects.filter(manifest__parents=report.manifest_id).values_list(
                    "pk", flat=True
                )
            )
        counts = dict.fromkeys(SEVERITIES, 0)
        for _, severity in set(
            Finding.objects.filter(
                report_id__in=reports, component__referrer__isnull=True
            ).values_list("vulnerability__osv_id", "severity")
        ):
            if severity in counts:
                counts[severity] += 1
        for severity, count in counts.items():
            setattr(report, severity, count)
        report.component_count = Component.objects.filter(
            report_id__in=reports, referrer__isnull=True
        ).count()
        report.save(update_fields=[*SEVERITIES, "component_count"])


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("scanning", "0002_i11b_incomplete_reasons"),
    ]

    operations = [
        migrations.AddField(
            model_name="component",
            name="referrer",
            field=models.ForeignKey(
                blank=True,
                help_text="Empty for a component found in the layers.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="registry.manifest",
                verbose_name="SBOM referrer",
            ),
        ),
        migrations.RunPython(link_referrers, migrations.RunPython.noop, elidable=True),
    ]
