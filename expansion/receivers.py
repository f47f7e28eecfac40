from django.conf import settings

from annotator.models import Annotation


def queue_expansions(sender, annotation_id: int, **kwargs) -> None:
    """A submitted annotation gets its first samples with the active prompt and endpoint."""
    from .services import traces_request  # not at start-up: it loads the OpenAI client

    annotation = Annotation.objects.select_related("problem").get(pk=annotation_id)
    traces_request(annotation=annotation, samples=settings.EXPANSION_SAMPLES)
