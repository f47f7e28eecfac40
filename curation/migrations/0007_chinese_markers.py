"""The analytics count the Chinese markers beside the report's English ones: the turns of
reflection (等等, 不对, 或者, 嗯, 让我检查, 让我验证, 但是) and the conclusions (所以, 因此), as
"Wait", "But", "So" and "Therefore" are counted in English.

A marker is counted over the traces already profiled here when few traces exist; otherwise
it is left uncounted (the dashboard lists it as being counted) for `manage.py
analytics_refresh`, which counts every marker not yet counted, so that migrating a large
database does not read every trace.
"""

from django.db import migrations
from django.utils import timezone

CHINESE_MARKERS = ["等等", "不对", "或者", "嗯", "让我检查", "让我验证", "但是", "所以", "因此"]
COUNT_HERE = 5000  # profiled traces up to which the migration counts the markers itself


def add_markers(apps, schema_editor):
    from expansion.markers import marker_count

    Marker = apps.get_model("curation", "Marker")
    MarkerCount = apps.get_model("curation", "MarkerCount")
    Trace = apps.get_model("expansion", "Trace")
    profiled = Trace.objects.filter(profile__isnull=False)
    count_here = profiled.count() <= COUNT_HERE
    markers = [
        Marker.objects.get_or_create(phrase=phrase, defaults={"builtin": True})[0]
        for phrase in CHINESE_MARKERS
    ]
    if not count_here:
        return
    counts = []
    for pk, thought, solution in profiled.values_list("pk", "thought", "solution").iterator():
        text = f"{thought}\n{solution}"
        counts += [
            MarkerCount(trace_id=pk, marker=marker, count=count)
            for marker in markers
            if (count := marker_count(text, marker.phrase))
        ]
    MarkerCount.objects.bulk_create(counts, ignore_conflicts=True)
    Marker.objects.filter(pk__in=[m.pk for m in markers]).update(counted_at=timezone.now())


def remove_markers(apps, schema_editor):
    apps.get_model("curation", "Marker").objects.filter(
        phrase__in=CHINESE_MARKERS, builtin=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0006_export_heartbeat"),
        ("expansion", "0014_trace_checks_degenerate_language"),
    ]

    operations = [migrations.RunPython(add_markers, remove_markers)]
