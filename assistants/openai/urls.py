"""Routes of the Assistants-compatible API, mounted at /openai/v1/ (OpenAI's own paths)."""

from django.urls import path

from assistants.openai.views import assistants, files, runs, threads, vector_stores

T = "threads/<str:thread_id>"
R = f"{T}/runs/<str:run_id>"
V = "vector_stores/<str:store_id>"

urlpatterns = [
    path("assistants", assistants.AssistantListView.as_view()),
    path("assistants/<str:assistant_id>", assistants.AssistantDetailView.as_view()),
    path("threads", threads.ThreadListView.as_view()),
    path("threads/runs", runs.ThreadAndRunView.as_view()),
    path(T, threads.ThreadDetailView.as_view()),
    path(f"{T}/messages", threads.MessageListView.as_view()),
    path(f"{T}/messages/<str:message_id>", threads.MessageDetailView.as_view()),
    path(f"{T}/runs", runs.RunListView.as_view()),
    path(R, runs.RunDetailView.as_view()),
    path(f"{R}/cancel", runs.RunCancelView.as_view()),
    path(f"{R}/submit_tool_outputs", runs.SubmitToolOutputsView.as_view()),
    path(f"{R}/steps", runs.StepListView.as_view()),
    path(f"{R}/steps/<str:step_id>", runs.StepDetailView.as_view()),
    path("files", files.FileListView.as_view()),
    path("files/<str:file_id>", files.FileDetailView.as_view()),
    path("files/<str:file_id>/content", files.FileContentView.as_view()),
    path("vector_stores", vector_stores.VectorStoreListView.as_view()),
    path(V, vector_stores.VectorStoreDetailView.as_view()),
    path(f"{V}/search", vector_stores.VectorStoreSearchView.as_view()),
    path(f"{V}/files", vector_stores.VectorStoreFileListView.as_view()),
    path(f"{V}/files/<str:file_id>", vector_stores.VectorStoreFileDetailView.as_view()),
    path(f"{V}/file_batches", vector_stores.FileBatchCreateView.as_view()),
    path(f"{V}/file_batches/<str:batch_id>", vector_stores.FileBatchDetailView.as_view()),
    path(f"{V}/file_batches/<str:batch_id>/cancel", vector_stores.FileBatchCancelView.as_view()),
    path(f"{V}/file_batches/<str:batch_id>/files", vector_stores.FileBatchFilesView.as_view()),
]
