"""The one name grammar: validators on the name, digest and media-type fields, and the
removal of tags stored before the grammar was enforced.

Before this, a tag ending in a newline ("stable\\n") passed every check (``$`` also matches
before a final newline), and such a tag made the repository's pages answer 500. What this
migration does with each stored tag whose name is outside the tag grammar
(``registry_portal.grammar.is_valid_tag``), deterministically:

- the tag is deleted, and a ``TagEvent`` records the deletion (old digest, no actor, and
  ``provenance = {"removed_by": "migration registry.0002", "reason": ...}``), so the
  history says where it went;
- its manifest stays linked to the repository: the image is still pullable by digest and
  can be tagged again under a valid name. Nothing is renamed, so no valid tag appears that
  a policy could act on.

Repository and namespace names need no such pass: the /v2/ route's ``.`` stops at a newline,
and forms and the API strip surrounding whitespace, so no stored one can end in a newline.
"""

from django.db import migrations, models

import registry_portal.registry.validators
from registry_portal import grammar

REMOVED_BY = "migration registry.0002"


def remove_tags_outside_the_grammar(apps, schema_editor):
    Tag = apps.get_model("registry", "Tag")
    TagEvent = apps.get_model("registry", "TagEvent")
    invalid_ids = [
        tag_id
        for tag_id, name in Tag.objects.values_list("id", "name").iterator(chunk_size=2000)
        if not grammar.is_valid_tag(name)
    ]
    for tag in Tag.objects.filter(pk__in=invalid_ids).select_related("manifest").order_by("pk"):
        TagEvent.objects.create(
            repository_id=tag.repository_id,
            tag_name=tag.name,
            old_digest=tag.manifest.digest,
            new_digest="",
            provenance={
                "removed_by": REMOVED_BY,
                "reason": f"the name is not a valid tag: {grammar.TAG_RULES}",
            },
        )
        tag.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(remove_tags_outside_the_grammar, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='blob',
            name='digest',
            field=models.CharField(max_length=140, unique=True, validators=[registry_portal.registry.validators.validate_digest], verbose_name='digest'),
        ),
        migrations.AlterField(
            model_name='manifest',
            name='artifact_type',
            field=models.CharField(blank=True, max_length=255, validators=[registry_portal.registry.validators.validate_media_type], verbose_name='artifact type'),
        ),
        migrations.AlterField(
            model_name='manifest',
            name='config_digest',
            field=models.CharField(blank=True, max_length=140, validators=[registry_portal.registry.validators.validate_digest], verbose_name='config digest'),
        ),
        migrations.AlterField(
            model_name='manifest',
            name='digest',
            field=models.CharField(max_length=140, unique=True, validators=[registry_portal.registry.validators.validate_digest], verbose_name='digest'),
        ),
        migrations.AlterField(
            model_name='manifest',
            name='media_type',
            field=models.CharField(max_length=255, validators=[registry_portal.registry.validators.validate_media_type], verbose_name='media type'),
        ),
        migrations.AlterField(
            model_name='manifest',
            name='subject_digest',
            field=models.CharField(blank=True, db_index=True, max_length=140, validators=[registry_portal.registry.validators.validate_digest], verbose_name='subject digest'),
        ),
        migrations.AlterField(
            model_name='repository',
            name='name',
            field=models.CharField(help_text="The part after the namespace, e.g. 'website'.", max_length=255, validators=[registry_portal.registry.validators.validate_repository_path], verbose_name='name'),
        ),
        migrations.AlterField(
            model_name='tag',
            name='name',
            field=models.CharField(max_length=128, validators=[registry_portal.registry.validators.validate_tag], verbose_name='name'),
        ),
    ]
