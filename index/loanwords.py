"""English names that Korean questions spell in Hangul: "아테나 요금", "글루 잡 북마크".

Korean notes keep AWS names in English, so a question that writes 아테나 for Athena shares no
word with the note that answers it, and BM25 ranked unrelated notes first (`bench/
retrieval_bench.py`, 32 such questions: lexical MRR 0.51 against 0.83 for the embedder alone).
The query gets the English names added; the notes and the index are untouched.

Spellings are matched with spaces removed ("레이크 포메이션" = "레이크포메이션") anywhere in the
question, so particles ("아테나의", "글루가") need no analysis. Every key is at least two
syllables and reads as nothing but the name in an AWS question. Words the notes also write in
Hangul (서버리스, 샤드) are kept: a section headed "Serverless Inference" or "Job Bookmarks"
still only matches the English.
"""
from __future__ import annotations

import re

# Korean spelling -> English, as the notes write it. Services first, then the features,
# frameworks and formats the notes name in English.
NAMES = {
    "아테나": "Athena", "글루": "Glue", "레드시프트": "Redshift",
    "스펙트럼": "Spectrum", "키네시스": "Kinesis", "파이어호스": "Firehose", "람다": "Lambda",
    "세이지메이커": "SageMaker", "다이나모디비": "DynamoDB", "다이나모": "DynamoDB",
    "오로라": "Aurora", "클라우드워치": "CloudWatch", "클라우드트레일": "CloudTrail",
    "클라우드포메이션": "CloudFormation", "스텝펑션": "Step Functions", "이벤트브리지": "EventBridge",
    "레이크포메이션": "Lake Formation", "퀵사이트": "QuickSight", "오픈서치": "OpenSearch",
    "엘라스틱서치": "Elasticsearch", "일래스틱서치": "Elasticsearch", "에스쓰리": "S3", "에스3": "S3",
    "이씨투": "EC2", "이씨2": "EC2", "이엠알": "EMR", "엠에스케이": "MSK", "디엠에스": "DMS",
    "케이엠에스": "KMS", "브이피씨": "VPC", "에스큐에스": "SQS", "에스엔에스": "SNS",
    "이비에스": "EBS", "이에프에스": "EFS", "에프에스엑스": "FSx",
    "아이에이엠": "IAM", "알디에스": "RDS", "글래시어": "Glacier", "스노우볼": "Snowball",
    "데이터싱크": "DataSync", "데이터브루": "DataBrew", "앱플로우": "AppFlow", "앱플로": "AppFlow",
    "엘라스티캐시": "ElastiCache", "일래스티캐시": "ElastiCache", "프라이빗링크": "PrivateLink",
    "카프카": "Kafka", "스파크": "Spark", "하둡": "Hadoop", "하이브": "Hive", "플링크": "Flink",
    "에어플로우": "Airflow", "에어플로": "Airflow", "프레스토": "Presto", "트리노": "Trino",
    "파케이": "Parquet", "파켓": "Parquet", "파르케": "Parquet", "에이브로": "Avro",
    "아브로": "Avro", "제이슨": "JSON", "씨에스브이": "CSV", "레디스": "Redis",
    "크롤러": "crawler", "북마크": "bookmark", "카탈로그": "Catalog", "샤드": "shard",
    "스팟": "Spot", "스파이스": "SPICE", "피처스토어": "Feature Store",
    "그라운드트루스": "Ground Truth", "데이터랭글러": "Data Wrangler", "모델모니터": "Model Monitor",
    "인퍼런스": "inference", "엔드포인트": "endpoint", "게이트웨이": "gateway",
    "레플리카": "replica", "스냅샷": "snapshot", "라이프사이클": "lifecycle",
    "인텔리전트티어링": "Intelligent-Tiering", "딥아카이브": "Deep Archive",
    "서버리스": "Serverless", "프로비저닝": "provisioned", "온디맨드": "on-demand",
    "컨슈머": "consumer", "프로듀서": "producer", "팬아웃": "fan-out", "데드레터": "dead-letter",
    # other vendors' products: spelt out, the chat's name check can tell the notes never say them
    "애저": "Azure", "구글": "Google", "지씨피": "GCP", "빅쿼리": "BigQuery", "빅테이블": "Bigtable",
    "코스모스디비": "Cosmos DB", "펍섭": "Pub/Sub", "파이어베이스": "Firebase",
    "스노우플레이크": "Snowflake", "데이터브릭스": "Databricks", "유니티카탈로그": "Unity Catalog",
    "쿠버네티스": "Kubernetes", "테라폼": "Terraform", "알리바바": "Alibaba",
}

# longest first, so that 다이나모디비 is one match and not 다이나모 plus a stray 디비
_SPELLING = re.compile("|".join(sorted(NAMES, key=len, reverse=True)))


def expand(query: str) -> str:
    """The query with the English name of every Korean spelling in it appended, once each, in
    the order the question says them."""
    if not re.search("[\uac00-\ud7a3]", query):
        return query
    names = dict.fromkeys(NAMES[m.group()] for m in _SPELLING.finditer(re.sub(r"\s+", "", query)))
    found = [name for name in names if name.lower() not in query.lower()]
    return f"{query} ({', '.join(found)})" if found else query
