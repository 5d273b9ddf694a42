"""Every page of the app in one place: title, file, URL path, icon and the roles that may open it."""

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.models import Role, UserPublic

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"
EVERYONE = tuple(Role)


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    section: str
    roles: tuple[Role, ...] = EVERYONE

    @property
    def url_path(self) -> str:
        return self.file.removesuffix(".py")

    def page(self, default: bool = False) -> st.Page:
        return st.Page(PAGES_DIR / self.file, title=self.title, icon=self.icon, url_path=self.url_path,
                       default=default)


SETUP = PageSpec("setup.py", "Create the administrator", ":material/shield_person:", "Start")
LOGIN = PageSpec("login.py", "Log in", ":material/login:", "Start")

PAGES: tuple[PageSpec, ...] = (
    PageSpec("home.py", "Projects", ":material/home:", "Work"),
    PageSpec("data.py", "Data", ":material/upload_file:", "Work"),
    PageSpec("datasets.py", "Versions and profiles", ":material/dataset:", "Work"),
    PageSpec("contract.py", "Data contract", ":material/rule:", "Work"),
    PageSpec("train.py", "Train", ":material/model_training:", "Work", (Role.builder, Role.admin)),
    PageSpec("run.py", "Model results", ":material/insights:", "Work"),
    PageSpec("explain.py", "Explanations", ":material/lightbulb:", "Work"),
    PageSpec("model_card.py", "Model card", ":material/description:", "Governance"),
    PageSpec("checklist.py", "Responsible-ML checklist", ":material/checklist:", "Governance"),
    PageSpec("review.py", "Peer review", ":material/rate_review:", "Governance", (Role.reviewer, Role.admin)),
    PageSpec("reports.py", "Reports", ":material/picture_as_pdf:", "Governance"),  # PDFs for managers
    PageSpec("registry.py", "Model registry", ":material/inventory_2:", "Production"),  # actions checked in core
    PageSpec("predict.py", "Predict", ":material/batch_prediction:", "Production", (Role.builder, Role.admin)),
    PageSpec("monitor.py", "Monitoring", ":material/monitoring:", "Production"),  # uploads checked in core
    PageSpec("alerts.py", "Alerts", ":material/notifications_active:", "Production"),  # actions checked in core
    PageSpec("pipelines.py", "Retraining", ":material/autorenew:", "Production"),  # actions checked in core
    PageSpec("admin.py", "Users", ":material/group:", "Administration", (Role.admin,)),
    PageSpec("audit.py", "Audit trail", ":material/fact_check:", "Administration", (Role.admin,)),
    PageSpec("jobs.py", "Jobs", ":material/pending_actions:", "Administration", (Role.admin,)),
    PageSpec("profile.py", "Profile", ":material/account_circle:", "Account"),
)


def pages_for(user: UserPublic) -> dict[str, list[st.Page]]:
    """The navigation a user sees: only the pages one of their roles allows."""
    sections: dict[str, list[st.Page]] = {}
    allowed = [spec for spec in PAGES if user.has_role(*spec.roles)]
    for index, spec in enumerate(allowed):
        sections.setdefault(spec.section, []).append(spec.page(default=index == 0))
    return sections


def page_for(file: str) -> st.Page:
    """The st.Page of a registered page, for st.page_link and st.switch_page."""
    spec = next(spec for spec in PAGES if spec.file == file)
    return spec.page()
