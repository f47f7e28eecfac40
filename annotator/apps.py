from django.apps import AppConfig


class AnnotatorConfig(AppConfig):
    name = "annotator"
    verbose_name = "Annotation"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from config.i18n import remember_at_login

        user_logged_in.connect(remember_at_login, dispatch_uid="interface-language-at-login")
