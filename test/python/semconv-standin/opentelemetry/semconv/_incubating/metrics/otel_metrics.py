"""Stand-in: the SDK's own otel.sdk.* instruments."""
OTEL_SDK_PROCESSOR_LOG_QUEUE_SIZE = "otel.sdk.processor.log.queue.size"
OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE = "otel.sdk.processor.span.queue.size"


def create_otel_sdk_span_started(meter):
    return meter.create_counter("otel.sdk.span.started", unit="{span}")


def create_otel_sdk_span_live(meter):
    return meter.create_up_down_counter("otel.sdk.span.live", unit="{span}")


def create_otel_sdk_log_created(meter):
    return meter.create_counter("otel.sdk.log.created", unit="{log_record}")


def create_otel_sdk_processor_span_processed(meter):
    return meter.create_counter("otel.sdk.processor.span.processed", unit="{span}")


def create_otel_sdk_processor_log_processed(meter):
    return meter.create_counter("otel.sdk.processor.log.processed", unit="{log_record}")


def create_otel_sdk_processor_span_queue_capacity(meter):
    return meter.create_up_down_counter("otel.sdk.processor.span.queue.capacity", unit="{span}")


def create_otel_sdk_processor_log_queue_capacity(meter):
    return meter.create_up_down_counter("otel.sdk.processor.log.queue.capacity", unit="{log_record}")


def create_otel_sdk_metric_reader_collection_duration(meter):
    return meter.create_histogram("otel.sdk.metric_reader.collection.duration", unit="s")
