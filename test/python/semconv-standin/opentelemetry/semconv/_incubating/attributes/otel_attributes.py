"""Stand-in: otel.* attribute names and values."""
from enum import Enum

OTEL_COMPONENT_NAME = "otel.component.name"
OTEL_COMPONENT_TYPE = "otel.component.type"
OTEL_SPAN_PARENT_ORIGIN = "otel.span.parent.origin"
OTEL_SPAN_SAMPLING_RESULT = "otel.span.sampling_result"


class OtelComponentTypeValues(Enum):
    BATCHING_SPAN_PROCESSOR = "batching_span_processor"
    SIMPLE_SPAN_PROCESSOR = "simple_span_processor"
    BATCHING_LOG_PROCESSOR = "batching_log_processor"
    SIMPLE_LOG_PROCESSOR = "simple_log_processor"
    PERIODIC_METRIC_READER = "periodic_metric_reader"


class OtelSpanSamplingResultValues(Enum):
    DROP = "DROP"
    RECORD_ONLY = "RECORD_ONLY"
    RECORD_AND_SAMPLE = "RECORD_AND_SAMPLE"
